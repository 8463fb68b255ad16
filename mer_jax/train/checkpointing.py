"""Orbax checkpoints of a run: every fold's state, the fold plan and the config.

Layout under `<workdir>/checkpoints/`:
  run.json            config + fold plan + chunking of the run (written once; a resumed run must match)
  chunk_000/<epoch>/  CheckpointManager steps of the folds of chunk 0: `state` (fold-stacked train
                      state and the model kept by the selection rule) and `meta` (JSON: fold ids,
                      history, selection bookkeeping)
Saves are atomic, so a run killed mid-save resumes from the previous checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import orbax.checkpoint as ocp


def run_info_path(workdir) -> Path:
    return Path(workdir) / "checkpoints" / "run.json"


def write_or_check_run_info(workdir, info: dict) -> None:
    """Record what this run trains; if the workdir already holds a run, it must be the same one."""
    path = run_info_path(workdir)
    info = json.loads(json.dumps(info, default=str))
    if path.exists():
        previous = json.loads(path.read_text())
        if previous != info:
            changed = sorted(k for k in set(previous) | set(info) if previous.get(k) != info.get(k))
            raise ValueError(f"workdir {workdir} holds checkpoints of a different run (differs in: "
                             f"{', '.join(changed)}); use a new --workdir or delete {path.parent}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=1))


class ChunkCheckpointer:
    """CheckpointManager of one chunk of folds; checkpoint steps are completed epochs."""

    def __init__(self, workdir, chunk_index: int, max_to_keep: int = 1):
        self.directory = Path(workdir).absolute() / "checkpoints" / f"chunk_{chunk_index:03d}"
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=True,
                                                 create=True))

    def latest_epoch(self) -> int | None:
        return self.manager.latest_step()

    def save(self, epoch: int, state, meta: dict) -> None:
        self.manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

    def restore(self, like_state):
        """(state, meta) of the latest checkpoint, laid out (shapes, shardings) like `like_state`."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        restored = self.manager.restore(self.manager.latest_step(), args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return restored.state, restored.meta

    def restore_meta(self) -> dict:
        restored = self.manager.restore(self.manager.latest_step(),
                                        args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return restored.meta

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
