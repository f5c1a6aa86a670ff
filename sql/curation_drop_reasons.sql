-- title: Drop reasons per stage
-- about: Every rejected document by stage and reason, from rejects/; share is of all documents read.
-- requires: rejects.reject_stage, rejects.reject_reason, stages
-- chart: barh label=reason value=documents
SELECT r.reject_stage                          AS stage,
       r.reject_stage || ' / ' || r.reject_reason AS reason,
       count(*)                                AS documents,
       round(100.0 * count(*) / nullif((SELECT max(rows_in) FROM stages WHERE position = 0), 0), 2)
                                               AS pct_of_input
FROM rejects AS r
GROUP BY r.reject_stage, r.reject_reason
ORDER BY documents DESC, reason;
