-- title: Educational-value score histogram
-- about: Kept documents per edu_score half-point bucket (FineWeb-Edu 0..5 scale); appears once the
-- about: dataset carries edu_score (the scoring stage adds it).
-- requires: docs.edu_score
-- chart: bar label=edu_bucket value=documents
SELECT round(floor(edu_score * 2) / 2, 1) AS edu_bucket,
       count(*)                            AS documents,
       round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS pct
FROM docs
WHERE edu_score IS NOT NULL
GROUP BY 1
ORDER BY 1;
