"""The workspace's own data: event streams, CSV uploads and manual tables (source ``local``)."""

#: The event log's file in the workspace (``meterql/local/eventlog.py``): answered events wait
#: there until they are applied to ``local.duckdb``; it is empty once they all are.
EVENT_LOG = "events.log"
