"""I/O with sources: one connector per kind, created lazily so drivers load only when used."""

from __future__ import annotations

from meterql.connectors.base import CancelHandle, Connector, connector_for

__all__ = ["CancelHandle", "Connector", "connector_for"]
