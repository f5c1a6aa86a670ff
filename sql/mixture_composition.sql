-- Composition of a built mixture per phase: tokens, documents, epochs, target vs realised weight per source.
-- Reads BUILD/manifest.json. Variables: build (the build folder).
--   python -m training mixture report composition --build out/mixtures/tiny-demo
WITH m AS (SELECT json AS j FROM read_json_objects(getvariable('build') || '/manifest.json')),
phases AS (
  SELECT j->>'name' AS mixture, unnest(from_json(j->'phases', '["JSON"]')) AS p FROM m
),
src AS (
  SELECT mixture, p->>'name' AS phase, (p->>'tokens')::BIGINT AS phase_tokens,
         unnest(from_json(p->'sources', '["JSON"]')) AS s
  FROM phases
)
SELECT mixture,
       phase,
       s->>'name'                              AS source,
       (s->>'documents')::BIGINT               AS documents,
       (s->>'tokens')::BIGINT                  AS tokens,
       phase_tokens,
       round((s->>'epochs')::DOUBLE, 3)        AS epochs,
       (s->>'target_weight')::DOUBLE           AS target_weight,
       round((s->>'realised_weight')::DOUBLE, 5) AS realised_weight,
       round((s->>'realised_weight')::DOUBLE - (s->>'target_weight')::DOUBLE, 5) AS deviation,
       (s->>'heldout_documents')::BIGINT       AS heldout_documents,
       s->>'dataset'                           AS dataset,
       s->>'filter'                            AS filter
FROM src
ORDER BY phase, source;
