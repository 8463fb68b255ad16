"""Orbax checkpoints of a run: every fold's state, the fold plan and the config.

Layout under `<workdir>/checkpoints/`:
  run.json            config + fold plan + chunking of the run (written once; a resumed run must match)
  chunk_000/<epoch>/  CheckpointManager steps of the folds of chunk 0: `state` (fold-stacked train
                      state and the model kept by the selection rule) and `meta` (JSON: fold ids,
                      history, selection bookkeeping)
Saves are atomic, so a run killed mid-save resumes from the previous checkpoint. `load_fold_models` reads
folds' reported models back (mer_jax.analysis); `load_fold_model` one of them, to start another run from it
(`init.from_run`).
"""
from __future__ import annotations

import json
import re
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


def load_fold_model(workdir, like: dict, fold_name: str | None = None) -> tuple[dict, str]:
    """({"params", "batch_stats"} of the model the finished run in `workdir` reports for its fold `fold_name`
    (its first fold when None), laid out like `like` (one fold's state shapes, leading fold axis 1), and that
    fold's name). The reported model is the one its selection rule kept (the last epoch's for `last`)."""
    names = read_run_info(workdir, f"init.from_run={workdir}")["plan"]["names"]
    if fold_name and fold_name not in names:
        raise ValueError(f"init.from_fold={fold_name!r} is not a fold of the run in {workdir}; its folds: {names}")
    fold = names.index(fold_name) if fold_name else 0
    return load_fold_models(workdir, like, [fold], source=f"init.from_run={workdir}")[fold], names[fold]


def load_fold_models(workdir, like: dict, folds: list[int], sharding=None, source: str | None = None) -> dict:
    """{fold index: {"params", "batch_stats"} with leading fold axis 1} of the models the finished run in
    `workdir` reports for `folds` (the selection rule's model; the last epoch's for `last`), laid out like
    `like` (one fold's state shapes) and placed with `sharding` (default: the first device). Each chunk
    checkpoint holding a wanted fold is read once. `source` names the run in errors."""
    source = source or f"the run in {workdir}"
    info = read_run_info(workdir, source)
    names = info["plan"]["names"]
    device = sharding or jax.sharding.SingleDeviceSharding(jax.devices()[0])
    handlers = {"state": ocp.PyTreeCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    wanted, found = set(folds), {}
    for directory in sorted((Path(workdir).absolute() / "checkpoints").glob("chunk_*")):
        manager = ocp.CheckpointManager(directory, item_handlers=handlers)
        step = manager.latest_step()
        meta = None if step is None else manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
        here = [f for f in (meta or {}).get("fold_ids", []) if f in wanted]
        if not here:
            manager.close()
            continue
        if step < info["config"]["train"]["num_epochs"]:
            manager.close()
            raise ValueError(f"{source}: its fold {names[here[0]]} has trained {step} of "
                             f"{info['config']['train']['num_epochs']} epochs; finish that run first")
        stored = manager.item_metadata(step)["state"]
        key = "selected" if "selected" in stored else "train"
        size = jax.tree.leaves(stored[key]["params"])[0].shape[0]
        abstract = {key: jax.tree.map(lambda x: jax.ShapeDtypeStruct((size,) + x.shape[1:], x.dtype, sharding=device),
                                      like)}
        _check_shapes(stored[key], abstract[key], source)
        restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
            abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract), partial_restore=True)))
        manager.close()
        for f in here:
            j = meta["fold_ids"].index(f)
            found[f] = jax.tree.map(lambda x: x[j:j + 1], restored.state[key])
    missing = [names[f] for f in folds if f not in found]
    if missing:
        raise FileNotFoundError(f"{source}: no checkpoint holds its fold(s) {missing}")
    return found


def read_run_info(workdir, source: str | None = None) -> dict:
    """run.json of the run in `workdir` ({config, plan, clips}); `source` names the run in the error raised
    when there is none (default: the workdir)."""
    path = run_info_path(workdir)
    if not path.exists():
        raise FileNotFoundError(f"{source or workdir} holds no run: {path} does not exist")
    return json.loads(path.read_text())


def _leaf_names(tree) -> dict:
    """{path as its names joined by '/', without the 'value' of an nnx Variable: per-fold shape}."""
    names = lambda path: "/".join(t for t in re.findall(r"\w+", jax.tree_util.keystr(path)) if t != "value")
    return {names(path): tuple(leaf.shape[1:]) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _check_shapes(stored, abstract, source: str) -> None:
    """Every leaf of `abstract` must be in the checkpoint with the same per-fold shape; name those that are not."""
    found, wanted = _leaf_names(stored), _leaf_names(abstract)
    problems = [f"{k}: this run {shape}, checkpoint {found.get(k, 'missing')}"
                for k, shape in wanted.items() if found.get(k) != shape]
    if problems:
        raise ValueError(f"{source} holds another network (the same config.model and number of "
                         "classes are needed): " + "; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
