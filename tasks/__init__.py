"""Celery tasks: job steps, webhook delivery, beat housekeeping. No vendor JSON here."""
