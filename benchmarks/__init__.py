"""Eventdesk's performance harness: ``python -m benchmarks [--quick]`` (see README.md).

Not part of the test run: timings on shared machines are noisy, so nothing here
asserts; each figure is printed beside its target and written to
``benchmarks/results/latest.json``.
"""
