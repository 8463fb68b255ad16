"""Mixed precision (issue 5): bfloat16 compute, float32 parameters, statistics and optimizer state."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxpr_testing
from configs import m3enet
from mer_jax import experiment
from mer_jax.data.augment import AugmentConfig
from mer_jax.models import fold_conv, precision, registry
from mer_jax.train import losses
from mer_jax.train.state import fold_keys, init_fold_states, model_graphdef
from mer_jax.train.step import _apply, fold_parallel, fold_values, train_step

NUM_CLASSES = 3


def _make(name, **kwargs):
    return lambda rngs: registry.create_model(name, NUM_CLASSES, rngs=rngs, **kwargs)


def _one_step(dtype_name):
    """One STSTNet fold: (state before, state after one AdamW step, the step's TrainMetrics)."""
    make = precision.with_compute_dtype(_make("ststnet", input_size=12), dtype_name)
    tx = optax.adamw(1e-3, weight_decay=0.05)
    state = jax.jit(lambda keys: init_fold_states(make, tx, keys))(fold_keys(0, np.arange(1)))
    rng = np.random.default_rng(0)
    data = {"flow": jnp.asarray(rng.standard_normal((16, 12, 12, 3)), jnp.float32),
            "label": jnp.asarray(np.arange(16) % NUM_CLASSES, jnp.int32)}
    step = jax.jit(fold_parallel(train_step, graphdef=model_graphdef(make), tx=tx,
                                 loss_fn=lambda lg, y, a: losses.focal_loss(lg, y, a), input_keys=("flow",),
                                 flow_keys=("flow",), augment=AugmentConfig(variants=1)))
    ids = jnp.arange(16)[None]
    fold = fold_values(jnp.full((1, NUM_CLASSES), 2 / 3), jnp.ones(1, bool))
    new_state, metrics = step(state, data, ids, jnp.zeros_like(ids), fold, jax.random.key(1))
    return state, new_state, metrics


def test_bf16_step_keeps_float32_state_and_matches_float32_loss():
    state32, new32, metrics32 = _one_step("float32")
    state16, new16, metrics16 = _one_step("bfloat16")
    # Same float32 initial parameters whatever the compute dtype.
    jax.tree.map(np.testing.assert_array_equal, state32["params"], state16["params"])
    for tree in (new16["params"], new16["batch_stats"], new16["opt_state"]):
        floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert floats and all(x.dtype == jnp.float32 for x in floats)
    loss32, loss16 = (float(jax.vmap(lambda m: m.compute())(m)["loss"][0]) for m in (metrics32, metrics16))
    print("focal loss float32 vs bfloat16:", loss32, loss16)
    assert loss16 != loss32 and abs(loss16 - loss32) < 2e-2 * abs(loss32)
    # The BatchNorm running means moved by (nearly) the same float32 update.
    mean32, mean16 = new32["batch_stats"]["bn1"]["mean"][...], new16["batch_stats"]["bn1"]["mean"][...]
    np.testing.assert_allclose(mean16, mean32, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("fold_conv_strategy,input_gradients", [("grouped", 27 - 6), ("loop", 27)])
def test_bf16_m3enet_convolutions_and_matmuls_run_in_bf16(fold_conv_strategy, input_gradients):
    """Every convolution and matmul of M3ENet's (flow streams) forward and backward pass takes bfloat16 operands,
    the gradients reach the parameters as float32, and the loss is reduced in float32; under both
    fold_conv strategies."""
    with fold_conv.strategy(fold_conv_strategy):
        _check_bf16_m3enet(input_gradients)


def _check_bf16_m3enet(input_gradients):
    make = precision.with_compute_dtype(_make("m3enet", streams="flow", input_size=16), "bfloat16")
    graphdef, params, stats = nnx.split(nnx.eval_shape(lambda: make(nnx.Rngs(0))), nnx.Param, nnx.BatchStat)
    inputs = {"flow": jnp.zeros((4, 16, 16, 3), jnp.float32)}
    labels = jnp.array([0, 1, 2, 0])

    def loss_of(p, s):
        logits, _ = _apply(graphdef, p, s, inputs, train=True)
        return losses.focal_loss(logits, labels, jnp.full(NUM_CLASSES, 2 / 3)), logits

    jaxpr, ((loss, logits), grads) = jax.make_jaxpr(jax.value_and_grad(loss_of, has_aux=True),
                                                    return_shape=True)(params, stats)
    assert logits.dtype == jnp.bfloat16 and loss.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
    heavy = [e for e in jaxpr_testing.equations(jaxpr.jaxpr) if e.primitive.name in ("conv_general_dilated", "dot_general")]
    # 27 convolutions and 6 matmuls forward; backward, each one's weight gradient and its input gradient,
    # but for JAX's own rule the 6 convolutions that read the constant input (conv1 and shortcut of each
    # stream's first block); the loop strategy's custom VJP writes all 27 (XLA drops the 6 unused ones).
    assert len(heavy) == 33 + 33 + 6 + input_gradients
    assert all(v.aval.dtype == jnp.bfloat16 for e in heavy for v in e.invars)


def test_float32_is_the_model_itself_and_bad_names_fail():
    make = _make("ststnet")
    assert precision.with_compute_dtype(make, "float32") is make
    assert m3enet.get_config().train.compute_dtype == "float32"
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        precision.with_compute_dtype(make, "float16")


@pytest.mark.slow
def test_bf16_smoke_run_reaches_float32_metrics(data_dir, tmp_path):
    """configs/m3enet.py:smoke (6-subject LOSO, 4 epochs) in bfloat16 reaches pooled UF1 and UAR
    within 0.1 of the float32 run (bfloat16 rounding changes individual predictions of a 4-epoch model)."""
    results = {}
    for name in ("float32", "bfloat16"):
        config = m3enet.get_config("smoke")
        config.dataset.data_dir = data_dir
        config.train.progress = False
        config.train.compute_dtype = name
        results[name] = experiment.train_and_evaluate(config, tmp_path / name)
    print({n: (r["uf1"], r["uar"]) for n, r in results.items()})
    for metric in ("uf1", "uar"):
        assert abs(results["bfloat16"][metric] - results["float32"][metric]) <= 0.1
