-- Training tokens per phase and web domain (from each document's url; sources without urls show as '(no url)').
-- Variables: build. Top 50 domains per phase.
WITH docs AS (
  SELECT regexp_extract(filename, '([^/]+)/documents\.parquet$', 1) AS phase,
         coalesce(nullif(regexp_extract(url, '^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:www\.)?([^/:?#]+)', 1), ''),
                  '(no url)') AS domain,
         source, tokens
  FROM read_parquet(getvariable('build') || '/*/documents.parquet', filename = true)
  WHERE split = 'train'
),
agg AS (
  SELECT phase, domain, count(*) AS documents, sum(tokens) AS tokens,
         string_agg(DISTINCT source, ',' ORDER BY source) AS sources
  FROM docs GROUP BY ALL
)
SELECT phase, domain, sources, documents, tokens,
       round(tokens / sum(tokens) OVER (PARTITION BY phase), 5) AS share
FROM agg
QUALIFY row_number() OVER (PARTITION BY phase ORDER BY tokens DESC, domain) <= 50
ORDER BY phase, tokens DESC, domain;
