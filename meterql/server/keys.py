"""Moved to :mod:`meterql.access.keys` (the CLI's ``apikey`` commands use keys too); these
names stay until ``meterql/cli_api.py`` and ``benchmarks/`` import them from there."""

from meterql.access.keys import SCOPES, check_key, create_key

__all__ = ["SCOPES", "check_key", "create_key"]
