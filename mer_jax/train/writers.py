"""Scalar writers: TensorBoard through clu when TensorFlow is installed, JSON lines otherwise."""
from __future__ import annotations

import json
import logging
from pathlib import Path

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


def create_writer(workdir):
    """clu's default writer (TensorBoard event files + logging) or, without TensorFlow, JsonlWriter."""
    try:
        from clu import metric_writers
        return metric_writers.create_default_writer(str(workdir), just_logging=False)
    except ImportError as error:
        log.warning("TensorBoard writer unavailable (%s: install mer_jax[tf]); "
                        "writing scalars to %s/metrics.jsonl", error, workdir)
        return JsonlWriter(workdir)
