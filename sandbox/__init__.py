"""Vendor sandbox: a FastAPI app speaking each vendor's dialect; test double and demo backend.

One module or package per vendor under its own path prefix (``/hubspot``, ``/shopify`` …; a
package splits a vendor into data, HTTP plumbing, endpoints, bulk and webhooks); shared
in-memory state in :mod:`sandbox.state`; start-up settings (``TOOLQUEUE_SANDBOX_*``) in
:mod:`sandbox.settings`; one GraphQL parser in :mod:`sandbox.graphql`; test/demo controls
under ``/_sandbox``. The sandbox knows no toolqueue code (an import-linter contract).
"""
