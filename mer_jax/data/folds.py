"""Fold plans: which samples each fold trains, validates and tests on, as boolean masks [F, N].

Protocols (reference/corpora.md sections 8-9):
  loso   leave one subject out: one fold per subject (MEGC2019 composite: 68 folds)
  lodo   leave one dataset out: one fold per source corpus
  kfold  k folds of whole subjects (subjects dealt round-robin after a seeded shuffle)
`with_validation` then moves some training subjects of every fold into a validation set, for
honest model selection that never looks at the test subjects.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class FoldPlan:
    """Train / validation / test masks [F, N] over the N samples of a corpus, one row per fold."""
    protocol: str
    names: tuple[str, ...]      # one name per fold: the held-out subject or dataset, or `fold_k`
    train: np.ndarray           # bool [F, N]
    test: np.ndarray            # bool [F, N]
    val: np.ndarray             # bool [F, N]; all False without a validation split

    def __post_init__(self):
        shape = (len(self.names), self.train.shape[-1] if self.train.ndim == 2 else -1)
        for field in ("train", "test", "val"):
            mask = getattr(self, field)
            if mask.dtype != bool or mask.shape != shape:
                raise ValueError(f"FoldPlan.{field} must be a bool array of shape {shape}, "
                                 f"got {mask.dtype} {mask.shape}")
        if np.any(self.train & self.test) or np.any(self.train & self.val) or np.any(self.val & self.test):
            raise ValueError("FoldPlan masks overlap: a sample is in two of train/val/test of one fold")

    @property
    def num_folds(self) -> int:
        return len(self.names)

    def to_json(self) -> dict:
        """Plain-dict form stored next to checkpoints (sample indices per fold)."""
        idx = lambda m: [np.flatnonzero(row).tolist() for row in m]
        return {"protocol": self.protocol, "names": list(self.names), "train": idx(self.train),
                "val": idx(self.val), "test": idx(self.test), "num_samples": int(self.train.shape[1])}

    @classmethod
    def from_json(cls, d: dict) -> "FoldPlan":
        def mask(rows):
            m = np.zeros((len(d["names"]), d["num_samples"]), bool)
            for f, row in enumerate(rows):
                m[f, row] = True
            return m
        return cls(d["protocol"], tuple(d["names"]), mask(d["train"]), mask(d["test"]), mask(d["val"]))


def _plan_from_groups(protocol: str, groups: np.ndarray, held_out: list[list[str]], names) -> FoldPlan:
    test = np.stack([np.isin(groups, g) for g in held_out])
    return FoldPlan(protocol, tuple(names), ~test, test, np.zeros_like(test))


def _leave_one_out(protocol: str, groups, what: str) -> FoldPlan:
    """One fold per distinct value of `groups` (in sorted order), holding that group out."""
    groups = np.asarray(groups, dtype=str)
    unique = sorted(set(groups.tolist()))
    if len(unique) < 2:
        raise ValueError(f"{protocol} needs at least 2 {what}, got {unique}")
    return _plan_from_groups(protocol, groups, [[g] for g in unique], unique)


def loso(subjects) -> FoldPlan:
    """One fold per subject (in sorted order); subject ids must already be globally unique."""
    return _leave_one_out("loso", subjects, "subjects")


def lodo(datasets) -> FoldPlan:
    """One fold per source dataset (leave-one-dataset-out)."""
    return _leave_one_out("lodo", datasets, "datasets")


def kfold(subjects, k: int, seed: int = 0) -> FoldPlan:
    """k folds of whole subjects: subjects shuffled with `seed`, then dealt round-robin."""
    subjects = np.asarray(subjects, dtype=str)
    unique = sorted(set(subjects.tolist()))
    if not 2 <= k <= len(unique):
        raise ValueError(f"k-fold by subject needs 2 <= k <= #subjects ({len(unique)}), got k={k}")
    order = np.random.default_rng(seed).permutation(len(unique))
    held_out = [[unique[i] for i in order[f::k]] for f in range(k)]
    return _plan_from_groups("kfold", subjects, held_out, [f"fold_{f}" for f in range(k)])


def make_plan(protocol: str, subjects, datasets, k: int = 5, seed: int = 0) -> FoldPlan:
    """The plan named by a config's `protocol` field."""
    if protocol == "loso":
        return loso(subjects)
    if protocol == "lodo":
        return lodo(datasets)
    if protocol == "kfold":
        return kfold(subjects, k, seed)
    raise ValueError(f"unknown protocol {protocol!r}; expected 'loso', 'lodo' or 'kfold'")


def with_validation(plan: FoldPlan, subjects, num_val_subjects: int, seed: int = 0) -> FoldPlan:
    """Move `num_val_subjects` randomly chosen training subjects of each fold into its validation set.

    The validation subjects are drawn from the fold's own training subjects only, so selecting a
    model on them never looks at the held-out test subjects.
    """
    if num_val_subjects < 1:
        raise ValueError(f"num_val_subjects must be >= 1, got {num_val_subjects}")
    subjects = np.asarray(subjects, dtype=str)
    rng = np.random.default_rng(seed)
    val = np.zeros_like(plan.train)
    for f in range(plan.num_folds):
        candidates = sorted(set(subjects[plan.train[f]].tolist()))
        if len(candidates) <= num_val_subjects:
            raise ValueError(f"fold {plan.names[f]!r} has {len(candidates)} training subjects; cannot "
                             f"hold out {num_val_subjects} for validation and still train")
        chosen = rng.choice(candidates, size=num_val_subjects, replace=False)
        val[f] = plan.train[f] & np.isin(subjects, chosen)
    return dataclasses.replace(plan, train=plan.train & ~val, val=val)
