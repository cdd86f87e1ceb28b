"""`make bench`: load a synthetic social graph into the running local stack and measure it.

Run as `python -m bench` from the repository root (the Makefile does); see
docs/benchmarks.md for what each figure means and the latest run.
"""
