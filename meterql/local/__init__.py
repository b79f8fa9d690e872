"""The workspace's own data: event streams, CSV uploads and manual tables (source ``local``)."""
