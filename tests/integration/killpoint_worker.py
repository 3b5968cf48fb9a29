"""A real Celery worker that SIGKILLs itself at one point of a write operation:

    python tests/integration/killpoint_worker.py <point> <op index> <celery worker args...>

- `before_send`: the operation is marked sent, its request not yet made;
- `after_commit`: the vendor answered (it committed), the outcome is not yet recorded;
- `after_record`: the outcome and the checkpoint are recorded, the step not yet handed over.

The solo pool makes the process that runs the step the process that dies.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from app.work import writeloop

POINT, OP = sys.argv[1], int(sys.argv[2])
_send, _record = writeloop.WriteLoop.send, writeloop.WriteLoop.record


def die(where: str, op: Any) -> None:
    print(f"killpoint: dying {where} operation {op.index}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def send(self: Any, op: Any) -> Any:
    if POINT == "before_send" and op.index == OP:
        die(POINT, op)
    results = _send(self, op)
    if POINT == "after_commit" and op.index == OP:
        die(POINT, op)
    return results


def record(self: Any, op: Any, results: Any, *, reconciled: bool) -> Any:
    written = _record(self, op, results, reconciled=reconciled)
    if POINT == "after_record" and op.index == OP:
        die(POINT, op)
    return written


writeloop.WriteLoop.send = send  # type: ignore[method-assign]
writeloop.WriteLoop.record = record  # type: ignore[method-assign]

if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", "-A", "app.celery", "worker", *sys.argv[3:]]
    main()
