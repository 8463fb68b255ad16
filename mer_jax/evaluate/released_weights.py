"""Evaluate released per-fold weights on their held-out subjects, with no training.

Some authors release one PyTorch state_dict per LOSO fold, named by the held-out subject (STSTNet:
`STSTNet_Weights/sub01.pth`, `s01.pth`, `006.pth`). `evaluate_folds` loads each fold's file into our
model (`mer_jax.convert`), predicts that fold's held-out samples in eval mode (BatchNorm running
averages, no dropout) through the same prediction step the trainer uses, and returns the pooled
held-out probabilities, which the caller scores and reports like a trained run (selection
`released_weights`).

Weight files: for the fold holding out `dataset/<id>` the file is `<dir>/<id>.pth` (`<id>` as the
corpus stores it, e.g. `sub01`, `s01`, `006`); `<id>` without its zero padding (`6.pth`, `s1.pth`) and
the `.pt` suffix are accepted too. A fold without a file, or with several candidates, is an error that
lists the files found.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mer_jax.data.folds import FoldPlan
from mer_jax.train.state import split_model
from mer_jax.train.step import predict

log = logging.getLogger(__name__)

SUFFIXES = (".pth", ".pt")


@dataclasses.dataclass
class ReleasedWeightsResult:
    test_probs: np.ndarray        # float [N, K]: each sample predicted by the weights of its fold
    test_fold: np.ndarray         # int [N]: index of that fold in the plan
    weight_files: dict            # fold name -> weight file path (str)
    wall_time_s: float


def _id_forms(subject: str) -> list[str]:
    """File stems accepted for subject `dataset/<id>`: `<id>`, then `<id>` without zero padding."""
    local = subject.split("/", 1)[-1]
    forms = [local]
    match = re.fullmatch(r"([A-Za-z_-]*?)0*(\d+)", local)
    if match:
        forms.append(f"{match.group(1)}{int(match.group(2))}")
    return list(dict.fromkeys(forms))


def weight_file(weights_dir, subject: str) -> Path:
    """The weight file of the fold that holds out `subject` (`dataset/<id>`); see the module docstring."""
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise ValueError(f"init.per_fold_weights={str(weights_dir)!r} is not a folder")
    candidates = [weights_dir / f"{stem}{suffix}" for stem in _id_forms(subject) for suffix in SUFFIXES]
    found = [p for p in candidates if p.is_file()]
    if len(found) == 1:
        return found[0]
    present = sorted(p.name for p in weights_dir.iterdir() if p.is_file())
    shown = present[:30] + (["..."] if len(present) > 30 else [])
    if not found:
        raise ValueError(f"no released weights for held-out subject {subject}: expected {candidates[0]} "
                         f"(or {', '.join(p.name for p in candidates[1:])}); {weights_dir} holds "
                         f"{len(present)} file(s): {shown}")
    raise ValueError(f"several weight files for held-out subject {subject} in {weights_dir}: "
                     f"{[p.name for p in found]}; keep one")


def evaluate_folds(*, weights_dir, plan: FoldPlan, data: dict, make_model: Callable[[nnx.Rngs], nnx.Module],
                   model_name: str, input_keys, batch_size: int = 256,
                   reverse_input_channels: bool = False) -> ReleasedWeightsResult:
    """Predict every fold's held-out samples with that fold's released weights.

    data: {input key: [N, ...] arrays}; plan: a LOSO plan whose fold names are subject ids.
    reverse_input_channels: passed to `torch_weights.import_state_dict` (weights trained on
    channel-reversed inputs).
    """
    from mer_jax.convert.torch_checkpoint import load_state_dict
    from mer_jax.convert.torch_weights import import_state_dict

    if plan.protocol != "loso":
        raise ValueError(f"init.per_fold_weights holds one weight file per held-out subject: it needs "
                         f"dataset.protocol='loso', got {plan.protocol!r}")
    start = time.perf_counter()
    files = {name: weight_file(weights_dir, name) for name in plan.names}  # every file checked up front
    graphdef = split_model(nnx.eval_shape(lambda: make_model(nnx.Rngs(0))))[0]
    predict_fn = jax.jit(lambda params, stats, inputs, ids: predict(
        params, stats, inputs, ids, {}, graphdef=graphdef, input_keys=tuple(input_keys)))
    inputs = {k: jnp.asarray(data[k]) for k in input_keys}
    n = plan.test.shape[1]
    test_probs, test_fold = None, plan.test.argmax(0)
    for f, name in enumerate(plan.names):
        model = make_model(nnx.Rngs(0))
        try:
            import_state_dict(model_name, model, load_state_dict(files[name]))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{files[name]} (fold {name}): {error}") from error
        _, params, stats = split_model(model)
        rows = np.flatnonzero(plan.test[f])
        for s in range(0, len(rows), batch_size):
            block = rows[s:s + batch_size]
            width = min(batch_size, 1 << (len(block) - 1).bit_length())   # power-of-two buckets: few compiles
            ids = np.concatenate([block, np.full(width - len(block), block[0])])
            probs = np.asarray(predict_fn(params, stats, inputs, jnp.asarray(ids)))[:len(block)]
            if test_probs is None:
                test_probs = np.full((n, probs.shape[1]), np.nan, np.float32)
            test_probs[block] = probs
        log.info("fold %s: %d held-out samples predicted with %s", name, len(rows), files[name])
    return ReleasedWeightsResult(test_probs=test_probs, test_fold=test_fold,
                                 weight_files={k: str(v) for k, v in files.items()},
                                 wall_time_s=time.perf_counter() - start)
