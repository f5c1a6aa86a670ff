"""Data mixtures: a researcher's YAML (sources, filters, weights, phases) validated, planned, and built into
tokenized packed shards per phase (the format in training/shards.py and DEVELOPERS.md)."""
