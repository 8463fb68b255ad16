"""The adaptive magnification factor of Adaptive DSTNet (papers/adaptive-dstnet.txt, section 3.5,
Algorithm 1), batched on the device.

Algorithm 1 for one sample (its body is an image in our copy; this is section 3.5's text):
    curr_alpha <- init_alpha; high_conf <- 0.0; result <- Null
    while curr_alpha <= max_alpha:
        probs <- DSTNet(magnified apex and MDOF at curr_alpha);  conf <- max(probs)
        if conf > high_conf: high_conf, result <- conf, argmax(probs)     ("exceeds the previous highest")
        if conf >= conf_thresh: stop                                     ("meets or exceeds", 0.85)
        curr_alpha <- curr_alpha + alpha_step
    return high_conf, result
The highest is updated first, then the threshold checked. The order does not change the answer: a sample
still running has high_conf < conf_thresh, so a confidence that reaches the threshold also exceeds
high_conf and becomes the result. A tie with an earlier confidence keeps the earlier result (strict >).
Section 4.1: conf_thresh 0.85, init_alpha 3, max_alpha 7. The step is not given; section 4.3.5 magnifies
with alpha = 3, 4, 5, 6, 7, so it is 1 here (`alpha_step`), and max_alpha is the last factor tried.

All samples of a batch run in one `lax.while_loop`: every pass evaluates the batch at the current alpha,
each sample still running takes its step of the algorithm and the finished ones keep their state; the
loop ends when every sample has stopped. Samples still running share one alpha (all start at init_alpha
and step together), so `predict_at` gets a scalar.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

CONFIDENCE_THRESHOLD = 0.85   # section 4.1
INIT_ALPHA = 3.0              # section 4.1
MAX_ALPHA = 7.0               # section 4.1
ALPHA_STEP = 1.0              # section 4.3.5: alpha in {3, 4, 5, 6, 7}


class AdaptiveResult(NamedTuple):
    """Per sample, [B] (probs [B, K]): the kept result (high_conf, result) and the alpha that produced
    it; `last_alpha` is the factor at which the sample stopped (alpha <= last_alpha). A sample whose
    confidence never exceeded 0.0 keeps Algorithm 1's Null: prediction -1, probs 0, alpha NaN."""
    probs: jax.Array
    prediction: jax.Array
    confidence: jax.Array
    alpha: jax.Array
    last_alpha: jax.Array


def num_alphas(init_alpha: float, max_alpha: float, alpha_step: float) -> int:
    """How many factors init_alpha, init_alpha + step, ... <= max_alpha the loop may try."""
    return math.floor((max_alpha - init_alpha) / alpha_step + 1e-9) + 1


def adaptive_alpha(predict_at: Callable[[jax.Array, Any], jax.Array], inputs: Any, *,
                   init_alpha: float = INIT_ALPHA, max_alpha: float = MAX_ALPHA, alpha_step: float = ALPHA_STEP,
                   threshold: float = CONFIDENCE_THRESHOLD) -> AdaptiveResult:
    """Algorithm 1 on a batch. `predict_at(alpha, inputs)` is jittable and returns class probabilities
    [B, K] of the batch `inputs` (any pytree: the samples, or their indices) with the apex magnified by
    the scalar `alpha`; jittable itself."""
    if not alpha_step > 0:
        raise ValueError(f"adaptive_alpha alpha_step must be positive, got {alpha_step}")
    if not init_alpha <= max_alpha:
        raise ValueError(f"adaptive_alpha init_alpha ({init_alpha}) must not exceed max_alpha ({max_alpha})")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"adaptive_alpha threshold must be in (0, 1], got {threshold}")
    steps = num_alphas(init_alpha, max_alpha, alpha_step)
    alpha_at = lambda k: jnp.asarray(init_alpha, jnp.float32) + k * jnp.asarray(alpha_step, jnp.float32)
    shape = jax.eval_shape(predict_at, alpha_at(0), inputs)
    if len(shape.shape) != 2:
        raise ValueError(f"adaptive_alpha predict_at must return probabilities [B, K], got shape {shape.shape}")
    batch = shape.shape[0]

    def running(carry):
        return ~carry["done"].all()

    def step(carry):
        k = carry["k"]
        alpha = alpha_at(k)
        probs = predict_at(alpha, inputs)
        confidence = probs.max(axis=-1)
        active = ~carry["done"]
        better = active & (confidence > carry["confidence"])
        keep = lambda new, old: jnp.where(better.reshape(better.shape + (1,) * (old.ndim - 1)), new, old)
        return {"k": k + 1,
                "done": carry["done"] | (active & (confidence >= threshold)) | (k + 1 >= steps),
                "probs": keep(probs, carry["probs"]),
                "prediction": keep(probs.argmax(axis=-1).astype(jnp.int32), carry["prediction"]),
                "confidence": keep(confidence, carry["confidence"]),
                "alpha": keep(jnp.broadcast_to(alpha, (batch,)), carry["alpha"]),
                "last_alpha": jnp.where(active, alpha, carry["last_alpha"])}

    start = {"k": jnp.zeros((), jnp.int32), "done": jnp.zeros((batch,), bool),
             "probs": jnp.zeros(shape.shape, shape.dtype), "prediction": jnp.full((batch,), -1, jnp.int32),
             "confidence": jnp.zeros((batch,), shape.dtype),                   # high_conf <- 0.0
             "alpha": jnp.full((batch,), jnp.nan, jnp.float32), "last_alpha": jnp.zeros((batch,), jnp.float32)}
    end = jax.lax.while_loop(running, step, start)
    return AdaptiveResult(end["probs"], end["prediction"], end["confidence"], end["alpha"], end["last_alpha"])
