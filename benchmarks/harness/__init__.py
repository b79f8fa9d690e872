"""Benchmark harness: meterql's modes against native PostgreSQL, native DuckDB, DuckDB's
postgres extension and a naive pull-everything baseline, on a usage-billing dataset.

Run ``python -m benchmarks.harness --scale tiny`` from the repository root.
"""
