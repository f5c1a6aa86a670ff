-- title: Documents through each curation stage
-- about: From the manifest: rows each stage received, kept and rejected (rows_in = kept + rejected).
-- requires: stages
-- chart: barh label=stage value=rows_kept
SELECT stage,
       rows_in,
       rows_kept,
       rows_rejected,
       round(100.0 * rows_rejected / nullif(rows_in, 0), 2) AS pct_rejected
FROM stages
ORDER BY position;
