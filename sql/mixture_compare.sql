-- Compare two mixture builds (e.g. two versions of one mixture): per phase and source, tokens and realised
-- weights side by side, and whether the source's content (dataset files + filter) changed.
-- Variables: build (A), other (B).
WITH builds AS (
  SELECT 'a' AS side, json AS j FROM read_json_objects(getvariable('build') || '/manifest.json')
  UNION ALL
  SELECT 'b' AS side, json AS j FROM read_json_objects(getvariable('other') || '/manifest.json')
),
phases AS (SELECT side, unnest(from_json(j->'phases', '["JSON"]')) AS p FROM builds),
src AS (
  SELECT side, p->>'name' AS phase, unnest(from_json(p->'sources', '["JSON"]')) AS s FROM phases
),
flat AS (
  SELECT side, phase, s->>'name' AS source, (s->>'tokens')::BIGINT AS tokens,
         (s->>'target_weight')::DOUBLE AS target, (s->>'realised_weight')::DOUBLE AS realised,
         s->>'content_hash' AS content_hash, s->>'filter' AS filter
  FROM src
),
a AS (SELECT * FROM flat WHERE side = 'a'),
b AS (SELECT * FROM flat WHERE side = 'b')
SELECT coalesce(a.phase, b.phase)   AS phase,
       coalesce(a.source, b.source) AS source,
       a.tokens                     AS tokens_a,
       b.tokens                     AS tokens_b,
       coalesce(b.tokens, 0) - coalesce(a.tokens, 0) AS tokens_delta,
       a.target                     AS target_a,
       b.target                     AS target_b,
       round(a.realised, 5)         AS realised_a,
       round(b.realised, 5)         AS realised_b,
       CASE WHEN a.source IS NULL THEN 'added'
            WHEN b.source IS NULL THEN 'removed'
            WHEN a.content_hash <> b.content_hash THEN 'content changed'
            WHEN a.target <> b.target THEN 'weight changed'
            ELSE 'same' END         AS change
FROM a FULL OUTER JOIN b ON a.phase = b.phase AND a.source = b.source
ORDER BY phase, source;
