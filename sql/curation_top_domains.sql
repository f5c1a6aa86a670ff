-- title: Top domains of kept documents
-- about: Registered host of each kept document's URL (leading www. removed); top 25.
-- requires: docs.url
-- chart: barh label=domain value=documents
WITH hosts AS (
    SELECT nullif(regexp_extract(lower(url), '^[a-z][a-z0-9+.-]*://(?:www\.)?([^/:?#]+)', 1), '') AS domain
    FROM docs
)
SELECT coalesce(domain, '(no url)')                          AS domain,
       count(*)                                               AS documents,
       round(100.0 * count(*) / sum(count(*)) OVER (), 2)     AS pct
FROM hosts
GROUP BY 1
ORDER BY documents DESC, domain
LIMIT 25;
