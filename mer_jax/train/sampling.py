"""Per-fold seeded batch plans: each fold draws batches only from its own training samples.

An epoch of a fold is a shuffled list of (sample, variant) pairs over the fold's training samples
and the augmentation variants. Every fold runs the same number of steps per epoch (set by the
largest training pool of the whole plan, so chunking folds never changes it); a smaller pool is
topped up with a second shuffled pass. The order depends only on (seed, global fold index, epoch),
so a resumed or re-chunked run draws the same batches.
"""
from __future__ import annotations

import math

import numpy as np


def steps_per_epoch(train_masks: np.ndarray, variants: int, batch_size: int) -> int:
    """Steps of one epoch for every fold: the largest fold's pool divided by the batch size."""
    largest = int(train_masks.sum(axis=1).max()) * variants
    if largest == 0:
        raise ValueError("a fold plan with no training samples cannot be trained")
    return math.ceil(largest / batch_size)


def epoch_batches(train_mask: np.ndarray, fold_id: int, epoch: int, *, seed: int, variants: int,
                  batch_size: int, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, variant ids), each int32 [num_steps, batch_size], for one fold and epoch."""
    pool_samples = np.repeat(np.flatnonzero(train_mask), variants)
    pool_variants = np.tile(np.arange(variants), int(train_mask.sum()))
    rng = np.random.default_rng([seed, fold_id, epoch])
    needed = num_steps * batch_size
    order = np.concatenate([rng.permutation(len(pool_samples))
                            for _ in range(math.ceil(needed / len(pool_samples)))])[:needed]
    shape = (num_steps, batch_size)
    return (pool_samples[order].reshape(shape).astype(np.int32),
            pool_variants[order].reshape(shape).astype(np.int32))


def eval_indices(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold sample ids padded to a common length, and the validity mask: int/bool [F, T]."""
    counts = masks.sum(axis=1)
    width = max(int(counts.max()), 1)
    ids = np.zeros((len(masks), width), np.int32)
    valid = np.zeros((len(masks), width), bool)
    for f, row in enumerate(masks):
        idx = np.flatnonzero(row)
        ids[f, :len(idx)] = idx
        valid[f, :len(idx)] = True
    return ids, valid
