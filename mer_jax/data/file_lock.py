"""One builder at a time: an exclusive lock file around work that several processes may start at once.

A multi-process run (one process per GPU or TPU host, `mer_jax.train.distributed`) starts every process
with the same config, so each would build the same TFDS corpus or compute the same feature-cache entry
into the same folder when the folder is shared. `exclusive(target)` takes an advisory `fcntl.flock` on
`<target>.lock`: the first process does the work, the others wait, then find it done and load it.
Processes on hosts with their own disks each build their own copy.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def exclusive(target: str | os.PathLike, what: str):
    """Hold the lock of `target` (a file or folder that need not exist yet); `what` names the work in
    the message logged while another process holds it."""
    lock_path = Path(f"{target}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to finish %s (lock %s)", what, lock_path)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
