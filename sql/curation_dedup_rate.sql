-- title: Deduplication rate
-- about: Share of the documents reaching each dedup stage that it removed as duplicates.
-- requires: stages
-- chart: bar label=stage value=dedup_rate_pct
SELECT stage,
       rows_in,
       rows_rejected                                               AS duplicates,
       round(100.0 * rows_rejected / nullif(rows_in, 0), 2)        AS dedup_rate_pct
FROM stages
WHERE stage LIKE '%dedup%'
ORDER BY position;
