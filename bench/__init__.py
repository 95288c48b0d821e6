"""Benchmarks on the real broker: ``python -m bench.alert_lateness``, ``python -m bench.throughput``.

See ``bench/README.md``. Every figure is also given as a ratio against a baseline
measured in the same run, because the machines are shared and noisy.
"""
