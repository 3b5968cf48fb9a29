# One image for api, worker, beat, flower and sandbox; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TOOLQUEUE_HOME=/data

WORKDIR /srv/toolqueue

# A plain `pip install .` builds from the packages themselves,
# so copy only what the distribution ships.
COPY pyproject.toml README.md ./
COPY app ./app
COPY tasks ./tasks
COPY connectors ./connectors
COPY sandbox ./sandbox
RUN pip install . \
 && useradd --system --uid 10001 --user-group --home-dir /srv/toolqueue \
        --shell /usr/sbin/nologin toolqueue \
 && mkdir -p /data \
 && chown toolqueue:toolqueue /data

# Never run Celery or the API as root: a compromised task would own the container.
USER toolqueue
EXPOSE 8000 5555 8100

CMD ["uvicorn", "app.api.main:app", "--host", "0.0.0.0", "--port", "8000"]
