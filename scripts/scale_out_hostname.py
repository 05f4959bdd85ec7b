"""``[core] hostname_callable`` for ``scripts/scale_out_check.py``.

One machine has one hostname, so two Celery workers on it would record the same ``hostname`` on every task
instance. Each worker of the check gets ``$SCALE_OUT_WORKER_NAME`` in its environment (and this folder on its
``PYTHONPATH``); the task supervisor reports that name when a task starts and on every heartbeat. Anywhere
the variable is unset this is Airflow's own default, the machine's FQDN.
"""

from __future__ import annotations

import os
import socket

__all__ = ["ENV", "hostname"]

ENV = "SCALE_OUT_WORKER_NAME"


def hostname() -> str:
    return os.environ.get(ENV) or socket.getfqdn()
