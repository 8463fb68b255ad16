"""Inputs with several versions per sample ([N, V, ...], e.g. apexes magnified at V alphas) and class-
balanced training pools in the trainer."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mer_jax.data.augment import AugmentConfig
from mer_jax.train import trainer
from mer_jax.train.state import fold_keys, init_fold_states, model_graphdef
from mer_jax.train.step import fold_values, predict, predict_adaptive, train_step
from test_early_stopping import PooledLinear, _config, _data, _plan


def _versions(data, count=3):
    """flow [N, V, S, S, 3]: version v is the map scaled by v + 1."""
    return {**data, "flow": np.stack([data["flow"] * (v + 1) for v in range(count)], axis=1)}


def _run(data, **kwargs):
    return trainer._Run(config=_config(**kwargs.pop("train", {})), workdir=None, data=data, plan=_plan(),
                        make_model=lambda rngs: PooledLinear(3, rngs=rngs), input_keys=("flow",), flow_keys=(),
                        num_classes=3, score_fn=None, versions=trainer.Versions(("flow",), **kwargs))


def test_pools_draw_versions_and_balance_classes():
    data = _versions(_data())
    run = _run(data, train={"balance_per_class": 7})
    labels = data["label"]
    for f, (samples, versions) in enumerate(run.pools):
        assert run.plan.train[f][samples].all() and set(versions.tolist()) <= {0, 1, 2}
        assert sorted(np.bincount(labels[samples]).tolist()) == [7] * len(np.unique(labels[run.plan.train[f]]))
    assert run.steps == -(-max(len(p[0]) for p in run.pools) // 8)


def test_steps_read_the_version_they_are_given():
    data = {k: jnp.asarray(v) for k, v in _versions(_data()).items()}
    make = lambda rngs: PooledLinear(3, rngs=rngs)
    graphdef = model_graphdef(make)
    _, params, stats = nnx.split(make(nnx.Rngs(0)), nnx.Param, nnx.BatchStat)
    ids = jnp.arange(5)
    at_two = predict(params, stats, data, ids, {}, graphdef=graphdef, input_keys=("flow",), variant_keys=("flow",),
                     eval_variant=2)
    plain = predict(params, stats, {"flow": data["flow"][:, 2]}, ids, {}, graphdef=graphdef, input_keys=("flow",))
    np.testing.assert_allclose(at_two, plain, atol=1e-6)
    # a train step on version v of each sample moves the model as a step on those maps does
    tx = optax.sgd(0.1)
    state = jax.tree.map(lambda x: x[0], init_fold_states(make, tx, fold_keys(0, [0])))
    loss = lambda logits, labels, w: optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    common = dict(graphdef=graphdef, tx=tx, loss_fn=loss, input_keys=("flow",), flow_keys=(),
                  augment=AugmentConfig(variants=1))
    versions = jnp.array([0, 2, 1, 1, 0])
    stepped, _ = train_step(state, data, ids, versions, fold_values(jnp.ones(3), jnp.asarray(True)),
                            jax.random.key(0), variant_keys=("flow",), **common)
    chosen = {"flow": data["flow"][ids, versions], "label": data["label"][ids]}
    by_hand, _ = train_step(state, chosen, jnp.arange(5), versions, fold_values(jnp.ones(3), jnp.asarray(True)),
                            jax.random.key(0), **common)
    np.testing.assert_allclose(stepped["params"]["head"]["kernel"], by_hand["params"]["head"]["kernel"], atol=1e-6)


def test_version_settings_are_checked():
    data = _versions(_data())
    with pytest.raises(ValueError, match="eval_version"):
        _run(data, eval_version=3)
    with pytest.raises(ValueError, match="alphas"):
        _run(data, adaptive_threshold=0.85, alphas=(3.0, 4.0))
    config = _config()
    config.augment.variants = 2
    with pytest.raises(ValueError, match="augment.variants"):
        trainer._Run(config=config, workdir=None, data=data, plan=_plan(),
                     make_model=lambda rngs: PooledLinear(3, rngs=rngs), input_keys=("flow",), flow_keys=(),
                     num_classes=3, score_fn=None, versions=trainer.Versions(("flow",)))


def test_adaptive_prediction_runs_algorithm_1_over_the_versions():
    """predict_adaptive keeps, per sample, the most confident of the versions tried in order until one
    reaches the threshold: the same as Algorithm 1 written out over the per-version predictions."""
    data = {k: jnp.asarray(v) for k, v in _versions(_data(), count=5).items()}
    make = lambda rngs: PooledLinear(3, rngs=rngs)
    graphdef = model_graphdef(make)
    _, params, stats = nnx.split(make(nnx.Rngs(3)), nnx.Param, nnx.BatchStat)
    ids = jnp.arange(12)
    common = dict(graphdef=graphdef, input_keys=("flow",), variant_keys=("flow",))
    per_version = [np.asarray(predict(params, stats, data, ids, {}, eval_variant=v, **common)) for v in range(5)]
    threshold = float(np.median(np.max(per_version, axis=-1)))   # some samples stop early, some never
    alphas = (3.0, 4.0, 5.0, 6.0, 7.0)
    adaptive, alpha = map(np.asarray, predict_adaptive(params, stats, data, ids, {}, alphas=alphas,
                                                       threshold=threshold, **common))
    for i in range(len(ids)):
        best, kept, kept_alpha = 0.0, None, None
        for factor, probs in zip(alphas, per_version):
            if probs[i].max() > best:
                best, kept, kept_alpha = probs[i].max(), probs[i], factor
            if probs[i].max() >= threshold:
                break
        np.testing.assert_allclose(adaptive[i], kept, atol=1e-6)
        assert alpha[i] == kept_alpha
