"""Who may call the HTTP API: scoped API keys, shared by the server and ``meterql apikey``."""

from meterql.access.keys import SCOPES, KeyStore, Scope, check_key, create_key

__all__ = ["SCOPES", "KeyStore", "Scope", "check_key", "create_key"]
