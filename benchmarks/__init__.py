"""Speed and memory targets of the harness, run on demand (`python -m benchmarks`), never as timed tests.

Each benchmark (P1 to P7, one module each) measures the harness and its baselines in the same run, interleaved,
and reports medians with their ratios; see `__main__.py`. `startup.py`, `replay_memory.py` and
`hostile_memory.py` are also scripts of their own.
"""
