-- Per arm and reference set of a proxy ablation or mixture search: mean held-out loss over seeds, its spread,
-- and the arm's rank per reference set (1 = lowest loss). Reads OUTPUT/results/<version>/data/*.parquet
-- (training/ablation/results.py). Variables: results (a results version folder).
--   duckdb -c "SET VARIABLE results = 'out/ablations/x/results/<version>'; .read sql/ablation_arms.sql"
WITH r AS (SELECT * FROM read_parquet(getvariable('results') || '/data/*.parquet')),
per_arm AS (
  SELECT study, arm, metric, coalesce(reference_set, 'mean') AS reference_set,
         count(*)              AS seeds,
         avg(value)            AS mean,
         stddev_samp(value)    AS sd,
         max(value) - min(value) AS seed_range
  FROM r
  GROUP BY ALL
)
SELECT study, metric, reference_set, arm, seeds,
       round(mean, 4) AS mean, round(sd, 4) AS sd, round(seed_range, 4) AS seed_range,
       rank() OVER (PARTITION BY study, metric, reference_set
                    ORDER BY CASE WHEN metric = 'mmlu_acc' THEN -mean ELSE mean END) AS rank
FROM per_arm
ORDER BY study, metric, reference_set, rank;
