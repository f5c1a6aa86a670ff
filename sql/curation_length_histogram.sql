-- title: Length of kept documents (characters)
-- about: Kept documents per power-of-two length bucket: bucket 2^k holds lengths in [2^k, 2^(k+1)).
-- requires: docs.text
-- chart: bar label=min_chars value=documents
WITH lengths AS (SELECT length(coalesce(text, '')) AS n FROM docs)
SELECT CAST(pow(2, floor(log2(greatest(n, 1)))) AS BIGINT) AS min_chars,
       count(*)                                             AS documents
FROM lengths
GROUP BY 1
ORDER BY 1;
