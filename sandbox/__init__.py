"""Vendor sandbox: a FastAPI app speaking each vendor's dialect; test double and demo backend.

One router module per vendor under its own path prefix (``/hubspot``, later ``/jira`` …);
shared in-memory state in :mod:`sandbox.state`; test/demo controls under ``/_sandbox``.
"""
