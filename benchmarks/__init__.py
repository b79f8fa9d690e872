"""meterql's benchmarks, run from the repository root as modules, e.g.
``.venv/bin/python -m benchmarks.planner`` or ``.venv/bin/python -m benchmarks.harness``
(see benchmarks/README.md). Not part of the installed package.
"""
