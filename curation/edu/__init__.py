"""The educational-value classifier: labels -> fasttext model -> evaluation -> registry -> Spark scoring.

Modules, one job each:
  normalize  the text normalisation applied identically when training and when scoring
  labels     label sets from files, teacher label datasets, and the reference-vs-random recipe
  train      fasttext supervised training with a document-level train/validation split
  evaluate   metrics (macro-F1, binary F1 at the threshold, Spearman, AUC vs human labels)
  report     the evaluation report on disk (JSON + markdown + PNG plots)
  registry   versioned model folders (`<root>/<version>/model.bin` + card) and the promoted pointer
  score      the scorer, the `EduScore` curation step and standalone scoring of a published dataset
"""
