"""Scalar writers: TensorBoard through clu when TensorFlow is installed, JSON lines otherwise."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from mer_jax.train import distributed

log = logging.getLogger(__name__)


class JsonlWriter:
    """Appends `{"step": s, "name": value, ...}` lines to `<workdir>/metrics.jsonl`."""

    def __init__(self, workdir):
        self.path = Path(workdir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write_scalars(self, step: int, scalars: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), **{k: float(v) for k, v in scalars.items()}}) + "\n")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class LoggingWriter:
    """Logs scalars and writes no file: the writer of every process but process 0 without clu."""

    def write_scalars(self, step: int, scalars: dict) -> None:
        log.info("step %d: %s", step, ", ".join(f"{k}={float(v):.6g}" for k, v in scalars.items()))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def create_writer(workdir):
    """clu's default writer (TensorBoard event files + logging) or, without TensorFlow, JsonlWriter.

    Only process 0 writes files; the other processes of a multi-process job get a logging-only writer.
    """
    main = distributed.is_main_process()
    try:
        from clu import metric_writers
        return metric_writers.create_default_writer(str(workdir), just_logging=not main)
    except ImportError as error:
        if not main:
            return LoggingWriter()
        log.warning("TensorBoard writer unavailable (%s: install mer_jax[tf]); "
                        "writing scalars to %s/metrics.jsonl", error, workdir)
        return JsonlWriter(workdir)
