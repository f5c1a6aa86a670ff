-- Training tokens per phase, source and educational-value score bucket (floor of edu_score, 0-5; sources
-- without an edu_score column show as NULL). Variables: build.
WITH agg AS (
  SELECT regexp_extract(filename, '([^/]+)/documents\.parquet$', 1) AS phase,
         source,
         CAST(floor(edu_score) AS INTEGER) AS edu_bucket,
         count(*)    AS documents,
         sum(tokens) AS tokens
  FROM read_parquet(getvariable('build') || '/*/documents.parquet', filename = true)
  WHERE split = 'train'
  GROUP BY ALL
)
SELECT phase, source, edu_bucket, documents, tokens,
       round(tokens / sum(tokens) OVER (PARTITION BY phase), 5) AS share_of_phase
FROM agg
ORDER BY phase, source, edu_bucket NULLS FIRST;
