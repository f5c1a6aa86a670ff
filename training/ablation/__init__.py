"""Proxy-model ablations and RegMix-style mixture search (`python -m training ablate run|search`)."""
