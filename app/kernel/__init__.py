"""The kernel: what every layer above stands on and that knows no jobs.

Settings, the Redis clients and every key and script, errors, encryption, metrics, the SSRF
rules, the connector registry, leases, the Celery app object. Imports only `connectors` and
libraries.
"""
