"""Tools for developing meterql from a source checkout, shared by ``tests/`` and
``benchmarks/``; not part of the installed package (pyproject ships ``meterql*`` only).

- ``pgcluster``: a throwaway PostgreSQL cluster (``PostgresCluster``).
- ``chromium``: Debian's Chromium under Playwright (``launch``), for the navigator's tests.
- ``screenshots``: the navigator's pages as PNGs into docs/ui/
  (``python -m devtools.screenshots``).
"""
