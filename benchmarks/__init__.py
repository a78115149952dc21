"""The benchmark script (``benchmarks/run.py``) and the child programs it starts."""
