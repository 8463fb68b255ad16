"""Learning-rate schedules and weight-decay masks of the trainer's AdamW."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mer_jax.train import trainer


def _cfg(**kw):
    base = dict(num_epochs=60, learning_rate=5e-5, schedule="warmup_cosine", warmup_epochs=15, b1=0.9, b2=0.999,
                weight_decay=0.05, weight_decay_on="all")
    return ml_collections.ConfigDict({**base, **kw})


def test_warmup_cosine_is_edmdbns_schedule():
    """EDMDBN section 4.3: linear warm-up to 5e-5 over 15 epochs, then cosine decay (60 epochs in all)."""
    lr = trainer._schedule(_cfg(), steps_per_epoch=10)
    assert float(lr(0)) == 0.0
    np.testing.assert_allclose(float(lr(75)), 2.5e-5, rtol=1e-6)      # half-way through the warm-up
    np.testing.assert_allclose(float(lr(150)), 5e-5, rtol=1e-6)       # peak at epoch 15
    np.testing.assert_allclose(float(lr(375)), 2.5e-5, rtol=1e-5)     # half-way through the cosine
    assert float(lr(600)) < 1e-12
    with pytest.raises(ValueError, match="warmup_epochs"):
        trainer._schedule(_cfg(warmup_epochs=60), steps_per_epoch=10)


def test_matrices_only_weight_decay_leaves_biases_alone():
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
    zeros = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)}
    for on, bias_moves in (("all", True), ("matrices", False)):
        tx = trainer._optimizer(_cfg(schedule="constant", weight_decay_on=on), steps_per_epoch=1)
        updates, _ = tx.update(zeros, tx.init(params), params)
        new = optax.apply_updates(params, updates)
        assert bool(jnp.all(new["kernel"] < 1.0))
        assert bool(jnp.any(new["bias"] != 1.0)) == bias_moves
