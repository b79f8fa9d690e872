"""The limits every query has unless the caller says otherwise (no heavy import: the
workspace's signatures name them before its engine is opened)."""

from __future__ import annotations

#: seconds before a query is stopped
DEFAULT_TIMEOUT_S = 300.0
#: rows kept before a result is cut
DEFAULT_MAX_ROWS = 1_000_000
