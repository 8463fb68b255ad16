"""Per-fold early stopping (masked updates under vmap), validation loss, per-fold input standardisation."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import ststnet
from mer_jax.data import folds
from mer_jax.data.augment import AugmentConfig
from mer_jax.evaluate import metrics
from mer_jax.train import trainer
from mer_jax.train.state import fold_keys, init_fold_states, model_graphdef
from mer_jax.train.step import fold_parallel, fold_values, predict, train_step

NUM_SUBJECTS, PER_SUBJECT, SIDE = 5, 6, 4


class PooledLinear(nnx.Module):
    """Linear classifier of the channel means: no BatchNorm, so a model that is not updated predicts
    the same at every epoch."""

    def __init__(self, num_classes, *, rngs):
        self.head = nnx.Linear(3, num_classes, rngs=rngs)

    def __call__(self, inputs, *, train):
        return self.head(inputs["flow"].mean(axis=(1, 2)))


def _data():
    rng = np.random.default_rng(0)
    n = NUM_SUBJECTS * PER_SUBJECT
    labels = rng.integers(0, 3, n)
    flow = rng.normal(size=(n, SIDE, SIDE, 3)) * [1.0, 2.0, 3.0] + [5.0, -1.0, 0.5] + labels[:, None, None, None]
    return {"flow": flow.astype(np.float32), "label": labels}


def _plan():
    subjects = np.repeat([f"s{i}" for i in range(NUM_SUBJECTS)], PER_SUBJECT)
    return folds.with_validation(folds.loso(subjects), subjects, 1, seed=0)


def _config(**train):
    config = ststnet.get_config()
    config.mesh.fold_devices = 1
    config.augment.update(variants=1, flip=False, max_rotation_deg=0.0, max_noise=0.0)
    config.train.update({"batch_size": 8, "eval_batch_size": 8, "progress": False, "selection": "val",
                         "eval_every_epochs": 1, "checkpoint_every_epochs": 1, **train})
    return config


def _train(tmp_path, **train):
    return trainer.train_folds(config=_config(**train), workdir=tmp_path, data=_data(), plan=_plan(),
                               make_model=lambda rngs: PooledLinear(3, rngs=rngs), input_keys=("flow",),
                               num_classes=3, score_fn=lambda y, p: metrics.uf1(y, p, 3))


def test_a_stopped_fold_keeps_its_state():
    """The masked update: the inactive fold's state comes back unchanged, the active one's moves."""
    make = lambda rngs: PooledLinear(3, rngs=rngs)
    tx = optax.adam(1e-2)
    step = jax.jit(fold_parallel(train_step, graphdef=model_graphdef(make), tx=tx, loss_fn=lambda l, y, w: (
        optax.softmax_cross_entropy_with_integer_labels(l, y).mean()), input_keys=("flow",), flow_keys=(),
        augment=AugmentConfig(variants=1), mask_stopped=True))
    state = init_fold_states(make, tx, fold_keys(0, [0, 1]))
    data = {k: jnp.asarray(v) for k, v in _data().items()}
    ids = jnp.tile(jnp.arange(8), (2, 1))
    new, _ = step(state, data, ids, jnp.zeros_like(ids), fold_values(jnp.ones((2, 3)), jnp.array([True, False])),
                  jax.random.key(1))
    for before, after in zip(jax.tree.leaves(state), jax.tree.leaves(new)):
        np.testing.assert_array_equal(after[1], before[1])
    assert not np.array_equal(new["params"]["head"]["kernel"][0], state["params"]["head"]["kernel"][0])
    assert int(new["step"][0]) == 1 and int(new["step"][1]) == 0


def test_folds_stop_after_patience_epochs_without_improvement(tmp_path):
    """With a learning rate of 0 no validation score ever beats epoch 1: every fold stops at 1 + patience,
    the chunk ends there, and the history is completed as the frozen models would give it."""
    result = _train(tmp_path, num_epochs=8, learning_rate=0.0, early_stopping_patience=2, val_metric="loss")
    assert result.epochs_trained.tolist() == [3] * NUM_SUBJECTS
    assert result.selected_epoch.tolist() == [1] * NUM_SUBJECTS
    h = result.history
    assert h["eval_epoch"] == list(range(1, 9)) and h["train_loss"].shape == (8, NUM_SUBJECTS)
    assert np.isfinite(h["train_loss"][:3]).all() and np.isnan(h["train_loss"][3:]).all()
    np.testing.assert_array_equal(h["test_probs"][-1], h["test_probs"][2])
    assert (h["val_score"] > 0).all()   # a cross-entropy, not a UF1 in disguise


def test_early_stopping_survives_a_resume(tmp_path):
    """A run interrupted after a fold stopped resumes with that fold still stopped, and ends as an
    uninterrupted one."""
    settings = {"num_epochs": 10, "learning_rate": 0.03, "early_stopping_patience": 2}
    whole = _train(tmp_path / "whole", **settings)
    assert whole.epochs_trained.min() < 4 < whole.epochs_trained.max(), "the scenario needs folds on both sides"
    assert _train(tmp_path / "split", stop_after_epochs=4, **settings).interrupted
    resumed = _train(tmp_path / "split", **settings)
    np.testing.assert_array_equal(resumed.epochs_trained, whole.epochs_trained)
    np.testing.assert_array_equal(resumed.selected_epoch, whole.selected_epoch)
    np.testing.assert_allclose(resumed.test_probs, whole.test_probs, atol=1e-6)


def test_inputs_are_standardised_with_each_folds_training_samples():
    data, plan = _data(), _plan()
    run = trainer._Run(config=_config(standardise_inputs=("flow",)), workdir=None, data=data, plan=plan,
                       make_model=lambda rngs: PooledLinear(3, rngs=rngs), input_keys=("flow",), flow_keys=(),
                       num_classes=3, score_fn=None)
    values = run.chunk_values(plan.train, np.ones(plan.num_folds, bool))
    for f, mask in enumerate(plan.train):
        x = data["flow"][mask].reshape(-1, 3)
        np.testing.assert_allclose(values["input_stats"]["flow"]["mean"][f], x.mean(0), rtol=1e-5)
        np.testing.assert_allclose(values["input_stats"]["flow"]["std"][f], x.std(0), rtol=1e-4)
    # predict standardises as the train step does: the same as a model fed standardised inputs
    make = lambda rngs: PooledLinear(3, rngs=rngs)
    graphdef, (params, stats) = model_graphdef(make), nnx.split(make(nnx.Rngs(0)), nnx.Param, nnx.BatchStat)[1:]
    stats_0 = jax.tree.map(lambda v: v[0], values["input_stats"])
    ids = jnp.arange(6)
    probs = predict(params, stats, {"flow": jnp.asarray(data["flow"])}, ids, stats_0, graphdef=graphdef,
                    input_keys=("flow",))
    by_hand = (data["flow"][:6] - stats_0["flow"]["mean"]) / stats_0["flow"]["std"]
    expected = predict(params, stats, {"flow": jnp.asarray(by_hand)}, jnp.arange(6), {}, graphdef=graphdef,
                       input_keys=("flow",))
    np.testing.assert_allclose(probs, expected, atol=1e-6)


@pytest.mark.parametrize("train, message", [
    ({"early_stopping_patience": 3, "selection": "last"}, "early_stopping_patience"),
    ({"val_metric": "accuracy"}, "val_metric"),
    ({"standardise_inputs": ("apex",)}, "standardise_inputs"),
])
def test_bad_settings_are_refused(train, message):
    with pytest.raises(ValueError, match=message):
        trainer._Run(config=_config(**train), workdir=None, data=_data(), plan=_plan(),
                     make_model=lambda rngs: PooledLinear(3, rngs=rngs), input_keys=("flow",), flow_keys=(),
                     num_classes=3, score_fn=None)
