"""The work the Celery tasks in `tasks/` do: run a job's step, deliver a webhook or an account
event, park and resume jobs on re-authorization, resume jobs on a vendor's signal, refresh
tokens ahead of expiry. Hands work on through `app.dispatch`; imports the store and kernel."""
