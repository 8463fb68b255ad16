"""A finished run read back for analysis: config, fold plan, results, per-sample predictions, per-fold
training curves, and every fold's reported model restored from its orbax checkpoint.

`load_run(workdir)` reads what `experiment.train_and_evaluate` wrote (checkpoints/run.json, results.json,
predictions.csv, the chunk checkpoints' meta); `predict(run, clips)` runs one fold's model or the mean of
all folds' probabilities (the fold ensemble) on new aligned clips, after computing the run's own features
from them (`experiment.compute_features`).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from mer_jax import experiment
from mer_jax.data import taxonomy
from mer_jax.data.folds import FoldPlan
from mer_jax.models.precision import with_compute_dtype
from mer_jax.train import checkpointing, trainer
from mer_jax.train.state import split_model


@dataclasses.dataclass
class Clips:
    """Aligned clips held in memory, readable by the feature functions of mer_jax.features as they read a
    Corpus (`frames`, `depth`, `onset`/`apex`/`offset`, `clip`, `aus`, `identity`).

    videos: uint8 RGB frames [T, H, W, 3] per clip, faces aligned and cropped as the run's corpus was.
    onset, apex, offset: frame indices into each clip. aus: multi-hot [N, len(AU_VOCAB)] (zeros when
    unknown; only MADV-Net reads them). depths: uint16 depth maps [T, H, W, 1] per clip, for runs that read
    stored depth (features.depth='stored'), else None."""
    videos: list
    onset: np.ndarray
    apex: np.ndarray
    offset: np.ndarray
    clip: np.ndarray | None = None
    aus: np.ndarray | None = None
    depths: list | None = None
    name: str = "clips"
    version: str = "in-memory"
    metadata: dict = dataclasses.field(default_factory=dict)
    kind = "frames"

    def __post_init__(self):
        n = len(self.videos)
        self.onset, self.apex, self.offset = (np.asarray(x, np.int64) for x in (self.onset, self.apex, self.offset))
        self.clip = np.array([f"clip_{i}" for i in range(n)] if self.clip is None else self.clip)
        self.aus = np.zeros((n, len(taxonomy.AU_VOCAB)), np.uint8) if self.aus is None else np.asarray(self.aus)
        for field in ("onset", "apex", "offset", "clip", "aus"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"Clips.{field} has {len(getattr(self, field))} entries for {n} videos")
        for i, video in enumerate(self.videos):
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
                raise ValueError(f"Clips.videos[{i}] must be uint8 [T, H, W, 3], got {video.dtype} {video.shape}")
            if not 0 <= self.onset[i] <= self.apex[i] <= self.offset[i] < len(video):
                raise ValueError(f"clip {self.clip[i]}: onset {self.onset[i]} <= apex {self.apex[i]} <= offset "
                                 f"{self.offset[i]} must index its {len(video)} frames")

    @classmethod
    def from_corpus(cls, corpus, indices) -> "Clips":
        """The clips `indices` of a loaded Corpus, decoded into memory."""
        indices = list(indices)
        pick = lambda a: np.asarray(a)[indices]
        return cls(videos=[corpus.frames(i) for i in indices], onset=pick(corpus.onset), apex=pick(corpus.apex),
                   offset=pick(corpus.offset), clip=pick(corpus.clip), aus=pick(corpus.aus),
                   depths=None if corpus.encoded_depth is None else [corpus.depth(i) for i in indices])

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def encoded_depth(self):
        """Non-None when the clips hold depth maps (the check experiment makes before reading them)."""
        return self.depths

    def frames(self, i: int, which=None) -> np.ndarray:
        return self.videos[i] if which is None else self.videos[i][list(which)]

    def depth(self, i: int, which=None) -> np.ndarray:
        if self.depths is None:
            raise ValueError("these Clips hold no depth maps; pass depths= (uint16 [T, H, W, 1] per clip)")
        return self.depths[i] if which is None else self.depths[i][list(which)]

    def identity(self) -> dict:
        """Feature-cache key: the annotations and the key frames' pixels (as Corpus.identity)."""
        digest = hashlib.sha256()
        for i in range(len(self)):
            digest.update(f"{self.clip[i]}|{self.onset[i]}|{self.apex[i]}|{self.offset[i]}".encode())
            digest.update(self.aus[i].tobytes())
            for t in (self.onset[i], self.apex[i], self.offset[i]):
                digest.update(np.ascontiguousarray(self.videos[i][t]).tobytes())
        return {"name": self.name, "version": self.version, "num_samples": len(self),
                "fingerprint": digest.hexdigest()}


@dataclasses.dataclass
class Run:
    """One finished run. `results` and `predictions` are None for a run that has not written them yet.

    predictions: predictions.csv (clip, subject, dataset, fold, label, prediction, prob_<class>) plus
    `correct`. history: per-fold training curves from the checkpoints' meta, {"epoch": [E],
    "train_loss" / "train_accuracy": {fold name: [E]}, and "eval_epoch" / "val_score" with validation
    selection}."""
    workdir: Path
    config: ml_collections.ConfigDict
    plan: FoldPlan
    clips: list
    class_names: list
    results: dict | None
    predictions: object | None
    history: dict
    _states: dict = dataclasses.field(default_factory=dict, repr=False)   # (fold, device id) -> restored state

    @property
    def folds(self) -> list[str]:
        return list(self.plan.names)

    def fold_index(self, fold: int | str) -> int:
        if isinstance(fold, str):
            if fold not in self.plan.names:
                raise ValueError(f"fold {fold!r} is not a fold of the run in {self.workdir}; its folds: {self.folds}")
            return self.plan.names.index(fold)
        if not 0 <= fold < self.plan.num_folds:
            raise ValueError(f"fold index {fold} is out of range for the {self.plan.num_folds} folds of the run")
        return int(fold)

    @functools.cached_property
    def _model(self):
        """(graphdef, one fold's {"params", "batch_stats"} shapes with leading axis 1, input keys)."""
        make_model, input_keys = experiment.model_builder(self.config, len(self.class_names))
        make_model = with_compute_dtype(make_model, self.config.train.compute_dtype)
        graphdef, params, stats = split_model(nnx.eval_shape(lambda: make_model(nnx.Rngs(0))))
        like = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1,) + x.shape, x.dtype),
                            {"params": params, "batch_stats": stats})
        return graphdef, like, tuple(input_keys)

    @functools.cached_property
    def inputs(self) -> tuple:
        """(corpus, labels, feature arrays) of the run, recomputed (or read from the feature cache) with its
        own config: the corpus must be reachable at config.dataset.data_dir (pass data_dir to load_run)."""
        corpus, labels, arrays, _ = experiment.load_inputs(self.config)
        if corpus.clip.tolist() != self.clips:
            raise ValueError(f"the corpus {corpus.name} at {self.config.dataset.data_dir} does not hold the clips "
                             f"the run in {self.workdir} trained on (checkpoints/run.json)")
        return corpus, labels, arrays

    @functools.cached_property
    def _predict_step(self):
        """One fold's jitted prediction step (trainer._predict_step: plain, one version, or adaptive)."""
        graphdef, _, input_keys = self._model
        # features.kind "auto" never resolves to dstnet_inputs, the one kind with versions
        versions = experiment._versions(self.config, self.config.features.kind, input_keys)
        return jax.jit(trainer._predict_step(graphdef, input_keys, versions))

    def fold_states(self, folds, devices=None) -> dict:
        """{fold index: {"params", "batch_stats"} (leading axis 1)} of the folds' reported models, fold k on
        devices[k % len(devices)] (default: every device of the notebook). Kept after the first read."""
        devices = devices or jax.devices()
        _, like, _ = self._model
        place = {f: devices[k % len(devices)] for k, f in enumerate(folds)}
        for device in devices:
            mine = [f for f in folds if place[f] == device and (f, device.id) not in self._states]
            if mine:
                read = checkpointing.load_fold_models(self.workdir, like, mine, jax.sharding.SingleDeviceSharding(device))
                self._states.update({(f, device.id): state for f, state in read.items()})
        return {f: self._states[f, place[f].id] for f in folds}

    def restore(self, fold: int | str = 0, device=None) -> nnx.Module:
        """The fold's reported model (the one its selection rule kept) as an nnx Module on `device` (default:
        the first device). Inputs the run standardised (train.standardise_inputs) must be standardised
        with `input_stats(fold)` before the call; `predict` does that."""
        f = self.fold_index(fold)
        state = self.fold_states([f], [device or jax.devices()[0]])[f]
        return self._merge(state)

    def restore_all(self, devices=None) -> list[nnx.Module]:
        """Every fold's reported model, in plan order, spread over `devices` (default: all of them)."""
        states = self.fold_states(list(range(self.plan.num_folds)), devices)
        return [self._merge(states[f]) for f in range(self.plan.num_folds)]

    def _merge(self, state) -> nnx.Module:
        graphdef, _, _ = self._model
        one = jax.tree.map(lambda x: x[0], state)
        return nnx.merge(graphdef, one["params"], one["batch_stats"])

    def input_stats(self, fold: int | str) -> dict:
        """{input key: {"mean", "std"}} of the fold's training samples for train.standardise_inputs (as the
        trainer computed them); {} when the run standardised nothing."""
        keys = tuple(self.config.train.standardise_inputs)
        if not keys:
            return {}
        _, _, arrays = self.inputs
        mask = self.plan.train[self.fold_index(fold)][None].astype(np.float32)
        stats = {}
        for k in keys:
            mean, std = trainer._fold_channel_stats(jnp.asarray(arrays[k]), jnp.asarray(mask))
            stats[k] = {"mean": mean[0], "std": std[0]}
        return stats


def load_run(workdir, data_dir: str | None = None) -> Run:
    """The run in `workdir`. `data_dir` replaces config.dataset.data_dir (where the corpus is on this machine),
    needed only to recompute the run's features (`Run.inputs`, standardised inputs). Progress bars are off
    (config.train.progress) for the features a notebook recomputes."""
    import pandas as pd

    workdir = Path(workdir)
    info = checkpointing.read_run_info(workdir)
    results_path = workdir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else None
    # results.json keeps the whole config; run.json only the fields that define the run.
    config = ml_collections.ConfigDict(results["config"] if results else info["config"])
    if data_dir is not None:
        config.dataset.data_dir = str(data_dir)
    config.train.progress = False
    plan = FoldPlan.from_json(info["plan"])
    predictions = None
    if (workdir / "predictions.csv").exists():
        predictions = pd.read_csv(workdir / "predictions.csv")
        predictions["correct"] = predictions["label"] == predictions["prediction"]
    return Run(workdir=workdir, config=config, plan=plan, clips=info["clips"],
               class_names=list(taxonomy.LABEL_SCHEMES[config.dataset.label_scheme]), results=results,
               predictions=predictions, history=_fold_history(workdir, plan))


def _fold_history(workdir: Path, plan: FoldPlan) -> dict:
    """Per-fold training curves from the meta of every chunk's latest checkpoint."""
    history = {"epoch": [], "train_loss": {}, "train_accuracy": {}, "eval_epoch": [], "val_score": {}}
    for directory in sorted((workdir / "checkpoints").glob("chunk_*")):
        checkpointer = checkpointing.ChunkCheckpointer(workdir, int(directory.name.split("_")[1]))
        if checkpointer.latest_epoch() is None:
            checkpointer.close()
            continue
        meta = checkpointer.restore_meta()
        checkpointer.close()
        history["epoch"] = list(range(1, len(meta["train_loss"]) + 1))
        history["eval_epoch"] = meta["eval_epoch"]
        for j, f in enumerate(meta["fold_ids"]):
            name = plan.names[f]
            for key in ("train_loss", "train_accuracy", "val_score"):
                if meta.get(key):
                    history[key][name] = [row[j] if row[j] is not None else np.nan for row in meta[key]]
    return history


def _fold_selection(run: Run, folds) -> list[int]:
    if isinstance(folds, str) and folds == "ensemble":
        return list(range(run.plan.num_folds))
    return [run.fold_index(f) for f in (folds if isinstance(folds, (list, tuple)) else [folds])]


def predict_arrays(run: Run, arrays: dict, folds="ensemble") -> np.ndarray:
    """Class probabilities [N, K] of feature arrays computed with the run's features config: one fold's
    (`folds` = its name or index), or the mean over several folds (a list, or "ensemble" = every fold).
    Each fold predicts as the trainer did (its input statistics; Adaptive DSTNet's magnification versions)."""
    _, _, input_keys = run._model
    missing = [k for k in input_keys if k not in arrays]
    if missing:
        raise ValueError(f"the run's model reads inputs {list(input_keys)}; the arrays lack {missing}")
    step = run._predict_step
    data = {k: jnp.asarray(arrays[k]) for k in input_keys}
    n = len(next(iter(data.values())))
    width = min(run.config.train.eval_batch_size, n)
    selected = _fold_selection(run, folds)
    states = run.fold_states(selected)
    total = np.zeros((n, len(run.class_names)), np.float64)
    for f in selected:
        one = jax.tree.map(lambda x: x[0], states[f])
        stats = run.input_stats(f)
        parts = []
        for start in range(0, n, width):
            ids = np.arange(start, min(start + width, n))
            ids = np.pad(ids, (0, width - len(ids)), mode="edge")   # one compiled batch shape
            out = step(one["params"], one["batch_stats"], data, jnp.asarray(ids), stats)
            parts.append(np.asarray(out[0] if isinstance(out, tuple) else out)[:min(width, n - start)])
        total += np.concatenate(parts)
    return (total / len(selected)).astype(np.float32)


def predict(run: Run, clips: Clips, folds="ensemble") -> np.ndarray:
    """Class probabilities [N, K] (classes `run.class_names`) of new aligned clips: the run's features are
    computed from them with its own features config, then predicted by one fold (name or index), a list
    of folds, or the mean over all folds ("ensemble")."""
    arrays = experiment.compute_features(run.config, clips)
    return predict_arrays(run, arrays, folds)
