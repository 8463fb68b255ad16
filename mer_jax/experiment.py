"""One experiment end to end: corpus -> features -> fold plan -> fold-parallel training -> report.

`train_and_evaluate(config, workdir)` is what `python -m mer_jax.main` runs, and is importable from
a notebook. It sits above the layers it wires together (data, features, models, train, evaluate).
"""
from __future__ import annotations

import collections
import dataclasses
import logging
from pathlib import Path

import numpy as np

from mer_jax.data import folds, taxonomy
from mer_jax.data.corpus import load_corpus
from mer_jax.evaluate import metrics, released_weights, report
from mer_jax.features.apex_spotting import METHODS as APEX_METHODS, spot_corpus_apexes
from mer_jax.features.dstnet_inputs import DSTNetInputsConfig, compute_dstnet_inputs
from mer_jax.features.keyframe_flow import KeyframeFlowConfig, compute_keyframe_flow
from mer_jax.features.madvnet_inputs import MADVNetInputsConfig, compute_madvnet_inputs
from mer_jax.features.motion_differences import MotionDifferencesConfig, compute_motion_differences
from mer_jax.features.precomputed_flow import PrecomputedFlowConfig, load_precomputed_flow
from mer_jax.models import registry
from mer_jax.train import checkpointing, distributed, trainer, writers

log = logging.getLogger(__name__)


# features.kind -> the corpus kind it reads (mer_jax.data.corpus.Corpus.kind).
FEATURE_KINDS = {"keyframe_flow": "frames", "precomputed_flow": "flow", "motion_differences": "frames",
                 "dstnet_inputs": "frames", "madvnet_inputs": "frames"}
_AUTO_KIND = {"frames": "keyframe_flow", "flow": "precomputed_flow"}   # features.kind = auto, by corpus kind
# Fields every features config may hold besides those of the kind's own config dataclass.
_FEATURE_COMMON = ("kind", "cache_dir", "missing_apex")
# dstnet_inputs fields that pick its networks and the factor predictions read, not the features' config
_DSTNET_NETWORKS = ("magnifier", "raft", "raft_variant", "eval_alpha")
_DEPTH_NETWORK = ("depth_weights",)   # madvnet_inputs: the Depth Anything checkpoint for depth='depth_anything'
_FEATURE_FIELDS = {"keyframe_flow": ("size", "flow_size", "flow", "batch_size", "tvl1", "strain", "apex_difference"),
                   "precomputed_flow": ("size", "value_scale", "channel_order"),
                   "motion_differences": ("size", "num_frames", "detail", "normalise"),
                   "dstnet_inputs": ("size", "alphas", "raft_updates", "batch_size"),
                   "madvnet_inputs": ("size", "num_frames", "depth", "depth_input_size")}


def feature_kind(config, corpus) -> str:
    """The features.kind this run computes: the configured one, or for `auto` the one that suits the
    corpus (`keyframe_flow` on frame corpora, `precomputed_flow` on flow corpora). A kind that cannot
    read the corpus is an error that says which kind would."""
    kind = config.features.kind
    by_corpus = _AUTO_KIND[corpus.kind]
    if kind == "auto":
        return by_corpus
    if kind not in FEATURE_KINDS:
        raise ValueError(f"features.kind {kind!r} is not available; expected one of "
                         f"{sorted(FEATURE_KINDS) + ['auto']}")
    if FEATURE_KINDS[kind] != corpus.kind:
        what = {"frames": "frames (clips)", "flow": "one precomputed flow image per sample, no frames"}
        raise ValueError(f"features.kind={kind!r} needs a corpus of {what[FEATURE_KINDS[kind]]}, but "
                         f"{corpus.name} holds {what[corpus.kind]}; use features.kind={by_corpus!r} (or 'auto')")
    return kind


def _feature_fields(config, kind: str) -> dict:
    fields = config.features.to_dict()
    known = set(_FEATURE_COMMON + _DSTNET_NETWORKS + _DEPTH_NETWORK).union(*_FEATURE_FIELDS.values())
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown features field(s) {unknown}; known: {sorted(known)}")
    return {k: v for k, v in fields.items() if k in _FEATURE_FIELDS[kind]}


def spot_missing_apexes(config, corpus):
    """The corpus with an apex for every clip the builder found none annotated for (it stores the midpoint):
    `features.missing_apex` = `dc_rois` spots it (mer_jax/features/apex_spotting.py), `midpoint` keeps it.
    Flow corpora have no frames to spot on and are returned as they are."""
    method = config.features.get("missing_apex", "midpoint")
    if method not in APEX_METHODS:
        raise ValueError(f"features.missing_apex must be one of {list(APEX_METHODS)}, got {method!r}")
    if method == "midpoint" or corpus.kind != "frames":
        return corpus
    return dataclasses.replace(corpus, apex=spot_corpus_apexes(corpus, method, progress=config.train.progress))


def load_inputs(config):
    """(corpus, labels, feature arrays, exclusion counts) for the config's corpus and label scheme."""
    dc = config.dataset
    options = {"skip_bad_samples": True} if dc.skip_bad_samples else {}
    if dc.image_size >= 0:
        options["image_size"] = dc.image_size
    corpus = load_corpus(dc.name, data_dir=dc.data_dir, manual_dir=dc.manual_dir, builder_options=options)
    kind = feature_kind(config, corpus)   # fails before any feature work on a mismatch
    labels = corpus.labels(dc.label_scheme)
    excluded = dict(collections.Counter(corpus.emotion[labels < 0].tolist()))
    if excluded:
        log.info("label scheme %s excludes %d samples by emotion: %s", dc.label_scheme,
                 int((labels < 0).sum()), excluded)
    corpus, labels = corpus.subset(labels >= 0), labels[labels >= 0]
    corpus = spot_missing_apexes(config, corpus)   # only the clips this run uses
    if dc.shuffle_labels:
        labels = np.random.default_rng(config.seed).permutation(labels)
    return corpus, labels, compute_features(config, corpus), excluded


def compute_features(config, corpus) -> dict:
    """The feature arrays {input key: [N, ...]} the config's `features` section computes from `corpus` (a
    loaded Corpus, or any object with its frame-access interface, e.g. mer_jax.analysis.Clips)."""
    kind = feature_kind(config, corpus)
    if kind == "precomputed_flow":
        arrays = load_precomputed_flow(corpus, PrecomputedFlowConfig(**_feature_fields(config, kind)))
    elif kind == "dstnet_inputs":
        arrays = _dstnet_inputs(config, corpus)
    elif kind == "madvnet_inputs":
        arrays = _madvnet_inputs(config, corpus)
    elif kind == "motion_differences":
        arrays = compute_motion_differences(corpus, MotionDifferencesConfig(**_feature_fields(config, kind)),
                                            cache_dir=config.features.cache_dir, progress=config.train.progress)
    else:
        arrays = compute_keyframe_flow(corpus, KeyframeFlowConfig.from_dict(_feature_fields(config, kind)),
                                       cache_dir=config.features.cache_dir, progress=config.train.progress)
    return arrays


def _weights_id(path: str) -> str:
    """Content hash of a weight file or of every file in a checkpoint folder (the feature-cache key)."""
    import hashlib

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights {path} do not exist")
    digest = hashlib.sha256()
    for file in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _dstnet_inputs(config, corpus) -> dict:
    """Magnified apexes and MDOF (features/dstnet_inputs.py) with the configured magnifier and RAFT."""
    from flax import nnx

    from mer_jax.convert.raft_weights import load_torchvision_raft
    from mer_jax.convert.torch_checkpoint import load_state_dict
    from mer_jax.features.magnify import load_magnifier
    from mer_jax.features.raft import RAFT, load_raft

    fc = config.features
    for field, what in (("magnifier", "a magnifier checkpoint folder (python -m mer_jax.main --config "
                                      "configs/magnifier.py writes <workdir>/checkpoint)"),
                        ("raft", "RAFT weights: torchvision's raft_large / raft_small state_dict (.pth) or a "
                                 "checkpoint folder written by configs/raft.py")):
        if not fc.get(field):
            raise ValueError(f"features.kind=dstnet_inputs needs features.{field}: {what}")

    def load_networks():
        if str(fc.raft).endswith(".pth"):
            # Built abstractly (no random initialisation to compile), then filled by the converter.
            raft = nnx.eval_shape(lambda: RAFT(fc.raft_variant, rngs=nnx.Rngs(0)))
            load_torchvision_raft(raft, load_state_dict(fc.raft))
        else:
            raft = load_raft(fc.raft)
        return load_magnifier(fc.magnifier), raft

    weights = {"magnifier": _weights_id(fc.magnifier), "raft": _weights_id(fc.raft)}
    return compute_dstnet_inputs(corpus, DSTNetInputsConfig(**_feature_fields(config, "dstnet_inputs")),
                                 load_networks=load_networks, weights_id=weights, cache_dir=fc.cache_dir,
                                 progress=config.train.progress)


def _madvnet_inputs(config, corpus) -> dict:
    """Texture clip, depth clip and AU vector (features/madvnet_inputs.py); Depth Anything is loaded from
    `features.depth_weights` when the depth is estimated."""
    fc = config.features
    inputs_config = MADVNetInputsConfig(**_feature_fields(config, "madvnet_inputs"))
    estimate, weights_id = None, ""
    if inputs_config.depth == "depth_anything":
        from mer_jax.features.depth import depth_frames, load_depth_anything

        model = load_depth_anything(fc.get("depth_weights"))   # a missing path says where to download it
        estimate = lambda frames: depth_frames(model, frames, size=inputs_config.depth_input_size)
        weights_id = _weights_id(fc.depth_weights)
    elif inputs_config.depth == "stored" and corpus.encoded_depth is None:
        raise ValueError(f"features.depth='stored' needs a corpus that stores depth maps; {corpus.name} does not. "
                         "Estimate them with features.depth='depth_anything' and features.depth_weights=<Depth "
                         "Anything V2 checkpoint>, or turn the depth path off with features.depth='none'")
    return compute_madvnet_inputs(corpus, inputs_config, estimate_depth=estimate, weights_id=weights_id,
                                  cache_dir=fc.cache_dir, progress=config.train.progress)


def _versions(config, kind: str, input_keys) -> trainer.Versions | None:
    """The inputs that hold one version per magnification factor (features `kind` dstnet_inputs), for the
    trainer."""
    threshold = config.train.adaptive_threshold
    if kind != "dstnet_inputs":
        if threshold:
            raise ValueError("train.adaptive_threshold needs inputs magnified at several factors "
                             "(features.kind=dstnet_inputs)")
        return None
    alphas = tuple(float(a) for a in config.features.alphas)
    if float(config.features.eval_alpha) not in alphas:
        raise ValueError(f"features.eval_alpha={config.features.eval_alpha} is not one of features.alphas {alphas}")
    return trainer.Versions(keys=tuple(k for k in input_keys if k in ("magnified_apex", "mdof")),
                            eval_version=alphas.index(float(config.features.eval_alpha)), alphas=alphas,
                            adaptive_threshold=threshold)


def make_plan(config, corpus) -> folds.FoldPlan:
    dc = config.dataset
    plan = folds.make_plan(dc.protocol, corpus.subject, corpus.dataset, k=dc.kfold_k, seed=config.seed)
    if config.train.selection == "val":
        plan = folds.with_validation(plan, corpus.subject, config.train.num_val_subjects, seed=config.seed)
    return plan


def model_builder(config, num_classes: int):
    """(make_model(rngs) -> the config's nnx model, the input keys it reads)."""
    model_kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    make_model = lambda rngs: registry.create_model(config.model.name, num_classes, rngs=rngs, **model_kwargs)
    return make_model, registry.model_inputs(config.model.name, **model_kwargs)


def train_and_evaluate(config, workdir) -> dict | None:
    """Train every fold, then write results.json, results.md, plots and scalars to `workdir`.

    Returns the results dict, or None when the run stopped early (`train.stop_after_epochs`); running
    again with the same workdir resumes it.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    corpus, labels, arrays, excluded = load_inputs(config)
    class_names = list(taxonomy.LABEL_SCHEMES[config.dataset.label_scheme])
    plan = make_plan(config, corpus)
    make_model, input_keys = model_builder(config, len(class_names))
    model_kwargs = {k: v for k, v in config.model.to_dict().items() if k != "name"}
    missing = [k for k in input_keys if k not in arrays]
    if missing:
        raise ValueError(f"model {config.model.name} ({model_kwargs}) reads inputs {list(input_keys)}, but the "
                         f"features of {corpus.name} give only {sorted(arrays)}"
                         + ("; on a flow corpus use --config.model.streams=flow" if config.model.name == "m3enet" else ""))
    if config.get("init") is not None and config.init.get("per_fold_weights"):
        return _evaluate_released_weights(config, workdir, corpus, labels, arrays, excluded, plan, class_names,
                                          make_model, input_keys)
    if config.init.get("from_run"):
        _check_no_shared_subjects(config.init.from_run, corpus)
    if distributed.is_main_process():
        # One writer for run.json on the shared workdir; a mismatch stops process 0 and with it the job.
        checkpointing.write_or_check_run_info(workdir, {"config": _run_defining(config), "plan": plan.to_json(),
                                                        "clips": corpus.clip.tolist()})
    # Augmentation turns the (u, v) vectors of computed flow with the image; precomputed flow images hold
    # min-max normalised values, not signed vectors, so they are flipped and rotated as plain images.
    flow_keys = ("flow",) if feature_kind(config, corpus) == "keyframe_flow" else ()
    result = trainer.train_folds(
        config=config, workdir=workdir, data={**arrays, "label": labels}, plan=plan, make_model=make_model,
        input_keys=input_keys, flow_keys=flow_keys, versions=_versions(config, feature_kind(config, corpus), input_keys),
        num_classes=len(class_names), score_fn=lambda y, p: metrics.uf1(y, p, len(class_names)))
    if result.interrupted:
        log.warning("stopped after train.stop_after_epochs=%d epochs; run again with the same "
                    "--workdir to resume", config.train.stop_after_epochs)
        return None
    history = _curves(result, labels, len(class_names), config.train.val_metric)
    results = {
        **_results_head(config, corpus, labels, result, excluded, plan, class_names, input_keys),
        "selection": result.selection,
        "selected_epoch": {plan.names[f]: int(e) for f, e in enumerate(result.selected_epoch)},
        "epochs_trained": {plan.names[f]: int(e) for f, e in enumerate(result.epochs_trained)},
        "wall_time_s": result.wall_time_s,
        **({"started_from": _start_fold(config.init)} if config.init.get("from_run") else {}),
        "config": config.to_dict(),
    }
    _write_predictions(workdir, corpus, labels, result.test_probs, result.test_fold, plan, class_names,
                       result.test_alpha)
    _write_scalars(workdir, history)
    report.write_report(workdir, results, history)
    log.info("%s on %s, %s, selection=%s: UF1 %.4f UAR %.4f accuracy %.4f (%.0f s)", config.model.name,
                 corpus.name, plan.protocol, result.selection, results["uf1"], results["uar"],
                 results["accuracy"], result.wall_time_s)
    return results


def _evaluate_released_weights(config, workdir: Path, corpus, labels, arrays, excluded, plan, class_names,
                               make_model, input_keys) -> dict:
    """No training: every LOSO fold's released weights predict its held-out subject; same report."""
    weights_dir = config.init.per_fold_weights
    result = released_weights.evaluate_folds(
        weights_dir=weights_dir, plan=plan, data=arrays, make_model=make_model, model_name=config.model.name,
        input_keys=input_keys, batch_size=config.train.eval_batch_size)
    results = {
        **_results_head(config, corpus, labels, result, excluded, plan, class_names, input_keys),
        "selection": "released_weights",
        "released_weights": {"dir": str(weights_dir), "files": result.weight_files},
        "wall_time_s": result.wall_time_s,
        "config": config.to_dict(),
    }
    _write_predictions(workdir, corpus, labels, result.test_probs, result.test_fold, plan, class_names)
    report.write_report(workdir, results)
    log.info("%s on %s, %s, released per-fold weights from %s: UF1 %.4f UAR %.4f accuracy %.4f",
             config.model.name, corpus.name, plan.protocol, weights_dir, results["uf1"], results["uar"],
             results["accuracy"])
    return results


def _results_head(config, corpus, labels, result, excluded, plan, class_names, input_keys) -> dict:
    """The head of results.json, the same for a trained and a released-weights run: the metrics of the
    held-out predictions, then model, the inputs it read (an ablation that drops one, e.g. MADV-Net without
    depth, shows here), corpus and protocol."""
    return {
        **metrics.summarize(labels, result.test_probs, result.test_fold, corpus.dataset, class_names),
        "model": config.model.name,
        "inputs": list(input_keys),
        "corpus": corpus.name,
        "protocol": {"name": plan.protocol, "num_folds": plan.num_folds, "label_scheme": config.dataset.label_scheme,
                     "classes": class_names, "excluded_by_label_scheme": excluded,
                     "shuffled_labels": bool(config.dataset.shuffle_labels)},
    }


# Fields that control how a run is carried out, not what it computes: a resumed run may change them.
_RUN_CONTROL = (("train", "stop_after_epochs"), ("train", "progress"), ("features", "cache_dir"),
                ("features", "batch_size"), ("dataset", "data_dir"), ("dataset", "manual_dir"))


def _start_fold(init) -> dict:
    """{"run", "fold"}: the run and fold whose model every fold started from (`init.from_run`)."""
    names = checkpointing.read_run_info(init.from_run)["plan"]["names"]
    return {"run": str(init.from_run), "fold": init.get("from_fold") or names[0]}


def _check_no_shared_subjects(source_workdir, corpus) -> None:
    """A run started from another run's model (`init.from_run`) must hold none of that run's subjects:
    its model has seen them (clip ids are dataset/subject/clip)."""
    subject_of = lambda clip: clip.rsplit("/", 1)[0]
    source = checkpointing.read_run_info(source_workdir, f"init.from_run={source_workdir}")
    seen = {subject_of(c) for c in source["clips"]}
    shared = sorted(seen & {subject_of(c) for c in corpus.clip.tolist()})
    if shared:
        raise ValueError(f"init.from_run={source_workdir} trained on subjects this run evaluates on ({len(shared)}: "
                         f"{', '.join(shared[:8])}{' ...' if len(shared) > 8 else ''}); pre-train on another corpus")


def _run_defining(config) -> dict:
    """The config without its run-control fields: what a resumed run must share with the original."""
    d = config.to_dict()
    for section, key in _RUN_CONTROL:
        d[section].pop(key, None)
    return d


def _curves(result: trainer.TrainResult, labels: np.ndarray, num_classes: int, val_metric: str) -> dict:
    """Per-epoch means over folds and pooled held-out UF1/UAR per eval epoch (for plots, TensorBoard);
    with validation selection, the fold mean of `val_metric` (val_uf1 or val_loss)."""
    h = result.history
    preds = [p.argmax(-1) for p in h["test_probs"]]
    curves = {"epoch": h["epoch"], "train_loss": _training_mean(h["train_loss"]),
              "train_accuracy": _training_mean(h["train_accuracy"]), "eval_epoch": h["eval_epoch"],
              "test_uf1": [metrics.uf1(labels, p, num_classes) for p in preds],
              "test_uar": [metrics.uar(labels, p, num_classes) for p in preds]}
    if h["val_score"] is not None:
        curves[f"val_{val_metric}"] = h["val_score"].mean(1).tolist()
    return curves


def _training_mean(per_fold: np.ndarray) -> list[float]:
    """Mean [E] over the folds still training of a per-fold training curve [E, F] (a fold stopped early
    has NaN there, trainer.py); NaN for an epoch in which every fold had stopped."""
    training = ~np.isnan(per_fold)
    count = training.sum(1)
    return np.where(count > 0, np.where(training, per_fold, 0).sum(1) / np.maximum(count, 1), np.nan).tolist()


def _write_predictions(workdir: Path, corpus, labels, test_probs, test_fold, plan, class_names,
                       test_alpha=None) -> None:
    """predictions.csv: one row per sample with its testing fold, label, prediction and probabilities, and
    for adaptive Adaptive DSTNet runs the magnification factor the adaptive loop kept (written by process 0
    only)."""
    import pandas as pd

    if not distributed.is_main_process():
        return
    table = pd.DataFrame({"clip": corpus.clip, "subject": corpus.subject, "dataset": corpus.dataset,
                          "fold": [plan.names[f] for f in test_fold],
                          "label": [class_names[y] for y in labels],
                          "prediction": [class_names[p] for p in test_probs.argmax(-1)]})
    for k, name in enumerate(class_names):
        table[f"prob_{name}"] = test_probs[:, k]
    if test_alpha is not None:
        table["alpha"] = test_alpha
    table.to_csv(workdir / "predictions.csv", index=False, float_format="%.7g")


def _write_scalars(workdir: Path, curves: dict) -> None:
    writer = writers.create_writer(workdir)
    for i, epoch in enumerate(curves["epoch"]):
        writer.write_scalars(epoch, {"train/loss": curves["train_loss"][i],
                                     "train/accuracy": curves["train_accuracy"][i]})
    held_out = {k.replace("_", "/", 1): k for k in ("test_uf1", "test_uar", "val_uf1", "val_loss") if k in curves}
    for i, epoch in enumerate(curves["eval_epoch"]):
        writer.write_scalars(epoch, {tag: curves[k][i] for tag, k in held_out.items()})
    writer.flush()
    writer.close()
