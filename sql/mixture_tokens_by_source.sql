-- Tokens and documents per phase, source and split (train / heldout), counted from the build's per-document
-- tables (BUILD/<phase>/documents.parquet: one row per document written to a shard).
-- Variables: build.
WITH agg AS (
  SELECT regexp_extract(filename, '([^/]+)/documents\.parquet$', 1) AS phase,
         source, split,
         count(*)           AS documents,
         count(DISTINCT id) AS distinct_documents,
         sum(tokens)        AS tokens,
         max(epoch) + 1     AS epochs_started
  FROM read_parquet(getvariable('build') || '/*/documents.parquet', filename = true)
  GROUP BY ALL
)
SELECT phase, source, split, documents, distinct_documents, tokens,
       round(tokens / sum(tokens) OVER (PARTITION BY phase, split), 5) AS share,
       epochs_started
FROM agg
ORDER BY phase, split DESC, source;
