"""`celery -A app.celery worker|beat|flower`: the Celery app (`app.kernel.celery`), by the name
the command line, compose and Flower know it by."""

from app.kernel.celery import app, celery

__all__ = ["app", "celery"]
