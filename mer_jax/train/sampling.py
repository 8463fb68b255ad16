"""Per-fold seeded batch plans: each fold draws batches only from its own training samples.

A fold trains on a pool of (sample, variant) pairs. By default the pool is every training sample with
every augmentation variant (`full_pool`); with class balancing (`balanced_pool`, Adaptive DSTNet's alpha
balancing) it holds the same number of pairs for every class. An epoch is a shuffled pass over the
pool. Every fold runs the same number of steps per epoch (set by the largest pool of the whole plan, so
chunking folds never changes it); a smaller pool is topped up with a second shuffled pass. The order
depends only on (seed, global fold index, epoch), so a resumed or re-chunked run draws the same batches.
"""
from __future__ import annotations

import math

import numpy as np

Pool = tuple[np.ndarray, np.ndarray]   # (sample ids, variant ids), int [P] each


def full_pool(train_mask: np.ndarray, variants: int) -> Pool:
    """Every training sample of the fold with each of its `variants` variants."""
    samples = np.flatnonzero(train_mask)
    return np.repeat(samples, variants), np.tile(np.arange(variants), len(samples))


def balanced_pool(train_mask: np.ndarray, labels: np.ndarray, per_class: int, variants: int, *, seed: int,
                  fold_id: int) -> Pool:
    """`per_class` (sample, variant) pairs for every class among the fold's training samples (Adaptive
    DSTNet section 4.1: magnified apexes at several alphas so that every class holds 150 samples).

    A class's samples are taken in a seeded random order, each with its variants in turn from a random
    first one: a class with at least `per_class` samples gives `per_class` distinct samples, one variant
    each; a smaller class uses its samples' other variants next, and repeats pairs only once every
    sample has given all `variants` of them.
    """
    if per_class < 1:
        raise ValueError(f"balanced_pool: per_class must be positive, got {per_class}")
    rng = np.random.default_rng([seed, fold_id, 1 << 20])   # apart from the epochs' streams
    samples, variant_ids = [], []
    for label in np.unique(labels[train_mask]):
        members = rng.permutation(np.flatnonzero(train_mask & (labels == label)))
        first = rng.integers(0, variants, len(members))
        j = np.arange(per_class)
        samples.append(members[j % len(members)])
        variant_ids.append((first[j % len(members)] + j // len(members)) % variants)
    return np.concatenate(samples), np.concatenate(variant_ids)


def steps_per_epoch(pool_sizes, batch_size: int) -> int:
    """Steps of one epoch for every fold: the largest pool divided by the batch size."""
    largest = int(max(pool_sizes))
    if largest == 0:
        raise ValueError("a fold plan with no training samples cannot be trained")
    return math.ceil(largest / batch_size)


def epoch_batches(pool: Pool, fold_id: int, epoch: int, *, seed: int, batch_size: int,
                  num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, variant ids), each int32 [num_steps, batch_size], for one fold and epoch."""
    pool_samples, pool_variants = pool
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
