"""The HTTP API (FastAPI): `uvicorn app.api.main:app`."""
