"""The HTTP API: ``meterql serve`` (FastAPI + uvicorn)."""
