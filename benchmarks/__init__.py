"""Benchmarks for cf-llama2: each module is one command that writes one JSON result.

Run them from the repository root, e.g. ``python -m benchmarks.local_adapters``; then
``python -m benchmarks.report`` assembles ``docs/benchmarks.md`` and the plots. ``python -m
benchmarks.run_all`` does everything in one go. See ``benchmarks/README.md``.
"""
