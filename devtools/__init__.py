"""Tools for developing meterql from a source checkout, shared by ``tests/`` and
``benchmarks/``; not part of the installed package (pyproject ships ``meterql*`` only).

- ``pgcluster``: a throwaway PostgreSQL cluster (``PostgresCluster``).
"""
