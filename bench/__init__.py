"""Benchmarks of a started Colonnade shop: `python -m bench.purchase` measures purchases."""
