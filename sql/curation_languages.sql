-- title: Languages of kept documents
-- about: Language label and mean language-ID confidence of kept documents.
-- requires: docs.lang, docs.lang_score
-- chart: bar label=lang value=documents
SELECT coalesce(lang, '(none)')        AS lang,
       count(*)                         AS documents,
       round(avg(lang_score), 3)        AS mean_lang_score,
       round(min(lang_score), 3)        AS min_lang_score
FROM docs
GROUP BY 1
ORDER BY documents DESC, lang;
