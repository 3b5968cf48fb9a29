"""Services the surfaces (`app.api`, `app.mcp`, `app.cli`, `app.client`) call: enqueue and read
jobs, the synchronous proxy, re-authorization, inbound vendor webhooks, tool schemas. Never
import `tasks`: work is sent through `app.dispatch`, by task name."""
