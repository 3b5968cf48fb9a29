"""A real Celery worker that SIGKILLs itself at the pop of one chosen message, exactly where
kombu's Redis transport loses it: after BRPOP took the message off the queue and before
`QoS.append` records it in `unacked` (celery/celery#7950). Nothing of the message is left
anywhere, so the visibility timeout can never bring it back.

    python tests/integration/popkill_worker.py <task-id suffix> <celery worker args...>

The suffix picks the message by its Celery task id (`.2`: step 2 of a job; `.webhook`: a
job's first webhook attempt). The worker runs with the solo pool: the process that pops is
the process that dies.
"""

from __future__ import annotations

import os
import signal
import sys

from kombu.transport import redis as kombu_redis

SUFFIX = sys.argv[1]
_append = kombu_redis.QoS.append


def append(self, message, delivery_tag):  # type: ignore[no-untyped-def]
    if str(message.headers.get("id", "")).endswith(SUFFIX):
        print(f"popkill: dying at the pop of {message.headers['id']}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return _append(self, message, delivery_tag)


kombu_redis.QoS.append = append

if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", "-A", "app.celery", "worker", *sys.argv[2:]]
    main()
