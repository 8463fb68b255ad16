"""Classification losses: focal loss with inverse-frequency class weights (M3ENet section 4.1.4), and
cross entropy with optional class weights (EDMDBN Eq. 3) and label smoothing.

Every loss takes logits [B, K] and int labels [B] and returns a float32 scalar: the mean over the batch,
or, with `weights` [B] (0/1 masks for padded samples), the weighted mean sum(w * l) / sum(w).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _mean(per_sample: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return per_sample.mean()
    weights = weights.astype(jnp.float32)
    return jnp.sum(weights * per_sample) / jnp.maximum(weights.sum(), 1e-12)


def focal_loss(logits: jax.Array, labels: jax.Array, alpha: jax.Array, gamma: float = 2.0,
               weights: jax.Array | None = None) -> jax.Array:
    """Focal loss -alpha_t (1 - p_t)^gamma log p_t (Lin et al. 2017; M3ENet section 4.1.4, gamma = 2).

    `alpha` [K] is the per-class weight (see `inverse_frequency_alpha`). Computed from log_softmax;
    1 - p_t as -expm1(log p_t), accurate when p_t is close to 1, and kept above the smallest float so
    the gradient of (1 - p_t)^gamma stays finite for gamma < 1 when p_t rounds to 1. gamma = 0 and
    alpha = 1 give cross entropy.
    """
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    log_p_t = jnp.take_along_axis(log_p, labels[:, None], axis=-1)[:, 0]
    alpha_t = jnp.asarray(alpha, jnp.float32)[labels]
    one_minus_p_t = jnp.maximum(-jnp.expm1(log_p_t), jnp.finfo(jnp.float32).tiny)
    return _mean(-alpha_t * one_minus_p_t ** gamma * log_p_t, weights)


def inverse_frequency_alpha(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """alpha_t = 1 - n_t / N per class t (M3ENet section 4.1.4), float32 [K].

    n_t counts `labels` equal to t and N is their number. A class absent from `labels` gets
    alpha = 1, the largest weight any class can get. The weights are not normalised: they sum to K - 1.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("inverse_frequency_alpha needs at least one label")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]")
    counts = np.bincount(labels, minlength=num_classes)
    return (1.0 - counts / labels.size).astype(np.float32)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """w_i = M / (K M_i) per class i (EDMDBN section 4.3, used on SAMM; sklearn's "balanced"), float32 [K].

    M counts `labels`, M_i those equal to i and K is `num_classes`. A class absent from `labels` gets
    weight 1 (it never appears in a batch drawn from them).
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("balanced_class_weights needs at least one label")
    counts = np.bincount(labels, minlength=num_classes)
    return np.where(counts > 0, labels.size / (num_classes * np.maximum(counts, 1)), 1.0).astype(np.float32)


CLASS_WEIGHTS = {
    "none": lambda labels, num_classes: np.ones(num_classes, np.float32),
    "inverse_frequency": inverse_frequency_alpha,
    "balanced": balanced_class_weights,
}


def cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array | None = None,
                  label_smoothing: float = 0.0, class_weights: jax.Array | None = None) -> jax.Array:
    """Softmax cross entropy against one-hot targets smoothed towards uniform by `label_smoothing`.

    `class_weights` [K] weight each sample by its true class as PyTorch's `CrossEntropyLoss(weight=)`
    does (EDMDBN Eq. 3 and its public code): sum(w_y l) / sum(w_y) over the batch (times `weights`).
    """
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    num_classes = logits.shape[-1]
    targets = jax.nn.one_hot(labels, num_classes) * (1.0 - label_smoothing) + label_smoothing / num_classes
    if class_weights is not None:
        per_class = jnp.asarray(class_weights, jnp.float32)[labels]
        weights = per_class if weights is None else per_class * weights.astype(jnp.float32)
    return _mean(-jnp.sum(targets * log_p, axis=-1), weights)
