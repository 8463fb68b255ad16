"""M3ENet: size against paper Table 4, Table 3 ablations, BatchNorm modes and the fold-parallel apply."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mer_jax.models import complexity, registry
from mer_jax.models.m3enet import M3ENet
from mer_jax.train import losses

PAPER_PARAMS = 6.01e6    # paper Table 4
PAPER_FLOPS = 142.87e6   # paper Table 4, at 48 x 48
# Parameter counts derived by hand from the reference code (conv and Linear biases, BN scale + bias):
FLOW_STREAM = 728 + 12_064 + 57_920 + 590_080   # RB(1,8) + RB(8,32) + RB(32,64) + Linear(2304, 256)
GREY_ENCODER = 728 + 12_064 + 19_744            # RB(1,8) + RB(8,32) + RB(32,32)
FUSED_STREAM = 3 * 74_112 + 590_080             # 3 RB(64,64) + Linear(2304, 256)
HEAD_ROWS = 256 * 1024                          # fc1 weights per 256-d stream


def batch(size=4, input_size=48, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    shape = (size, input_size, input_size, 3)
    return {"flow": jax.random.normal(k1, shape), "frames": jax.random.uniform(k2, shape)}


@pytest.fixture(scope="module")
def model():
    return M3ENet(3, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("num_classes", [3, 5])
def test_param_count_matches_paper(num_classes):
    n = complexity.count_params(M3ENet(num_classes, rngs=nnx.Rngs(0)))
    print(f"M3ENet K={num_classes}: {n:,} parameters (paper Table 4: 6.01M)")
    assert n == 3 * FLOW_STREAM + GREY_ENCODER + 2 * FUSED_STREAM + (5 * HEAD_ROWS + 1024) \
        + (1024 * 1024 + 1024) + (1024 + 1) * num_classes
    assert abs(n - PAPER_PARAMS) / PAPER_PARAMS < 0.02
    # 6,001,088 + 1025 K: K >= 4 rounds to the paper's 6.01M, K = 3 to 6.00M.
    assert round(n / 1e6, 2) == (6.01 if num_classes >= 4 else 6.00)


def test_flops_against_paper(model):
    flops = complexity.flops_per_sample(model, batch())
    print(f"M3ENet FLOPs per sample: {flops / 1e6:.2f}M (XLA, lowered) vs paper Table 4 142.87M")
    # XLA skips multiply-adds on padding (73.5M); the dense count is 41.97M MACs = 83.9M FLOPs. No
    # convention gives the paper's figure (docs/deviations.md), so only a factor of 4 either way is asserted.
    assert PAPER_FLOPS / 4 < flops < PAPER_FLOPS * 4


@pytest.mark.parametrize("kwargs, removed", [
    ({"streams": "flow"}, GREY_ENCODER + 2 * FUSED_STREAM + 2 * HEAD_ROWS),
    ({"streams": "rgb"}, 3 * FLOW_STREAM + 3 * HEAD_ROWS),
    ({"streams": "single_rgb"}, FUSED_STREAM + HEAD_ROWS),
    ({"input_size": 32}, 5 * (2304 - 1024) * 256),
    ({"input_size": 44}, 0),    # 44 -> 22 -> 11 -> 6: the same 6 x 6 cells as 48
])
def test_ablations(model, kwargs, removed):
    variant = M3ENet(3, rngs=nnx.Rngs(0), **kwargs)
    assert complexity.count_params(model) - complexity.count_params(variant) == removed
    logits = variant(batch(input_size=kwargs.get("input_size", 48)), train=False)
    assert logits.shape == (4, 3) and bool(jnp.isfinite(logits).all())


def test_flow_only_at_28_reads_only_flow(model):
    """The flow-stream ablation on precomputed 28 x 28 flow images: 28 -> 14 -> 7 -> 4, 16 cells."""
    variant = M3ENet(3, rngs=nnx.Rngs(0), streams="flow", input_size=28)
    assert variant.flow_streams[0].proj.in_features == 16 * 64
    assert complexity.count_params(model) - complexity.count_params(variant) == \
        GREY_ENCODER + 2 * FUSED_STREAM + 2 * HEAD_ROWS + 3 * (2304 - 1024) * 256
    logits = variant({"flow": batch(input_size=28)["flow"]}, train=False)
    assert logits.shape == (4, 3) and bool(jnp.isfinite(logits).all())
    assert registry.model_inputs("m3enet", streams="flow", input_size=28) == ("flow",)


def test_bad_configuration_and_inputs(model):
    with pytest.raises(ValueError, match="positive"):
        M3ENet(3, rngs=nnx.Rngs(0), input_size=0)
    with pytest.raises(ValueError, match="streams must be one of"):
        M3ENet(3, rngs=nnx.Rngs(0), streams="none")
    with pytest.raises(ValueError, match="streams must be one of"):
        registry.model_inputs("m3enet", streams="u")
    with pytest.raises(ValueError, match=r"inputs\['flow'\] must be \[B, 48, 48, 3\]"):
        model({"frames": batch()["frames"], "flow": jnp.zeros((4, 48, 48, 2))}, train=False)


def test_registry():
    assert isinstance(registry.create_model("m3enet", 4, rngs=nnx.Rngs(0), streams="flow"), M3ENet)
    assert registry.model_inputs("m3enet") == ("flow", "frames")
    assert registry.model_inputs("m3enet", streams="rgb") == ("frames",)
    with pytest.raises(ValueError, match="known models: .*m3enet"):
        registry.create_model("m3e", 3, rngs=nnx.Rngs(0))


def test_train_and_eval_modes():
    model = M3ENet(3, rngs=nnx.Rngs(1))
    x = batch()
    running = lambda: [np.array(v) for v in jax.tree.leaves(nnx.state(model, nnx.BatchStat))]
    before = running()
    eval_logits = model(x, train=False)
    np.testing.assert_array_equal(eval_logits, model(x, train=False))
    assert all(np.array_equal(a, b) for a, b in zip(before, running()))
    train_logits = model(x, train=True)
    assert not np.allclose(train_logits, eval_logits)
    assert not all(np.array_equal(a, b) for a, b in zip(before, running()))


@pytest.mark.slow   # every trainer test runs this pattern (train/step.py, fold_parallel); ~13 s of compiling
def test_fold_parallel_functional_step():
    """The trainer's pattern: split once, stack 2 folds, jit(vmap(step)) with merge(copy=True)."""
    graphdef, _, _, rest = nnx.split(M3ENet(3, rngs=nnx.Rngs(0)), nnx.Param, nnx.BatchStat, ...)
    assert not jax.tree.leaves(rest)
    per_fold = [nnx.split(M3ENet(3, rngs=nnx.Rngs(seed)), nnx.Param, nnx.BatchStat)[1:] for seed in (1, 2)]
    params, stats = jax.tree.map(lambda *x: jnp.stack(x), *per_fold)
    tx = optax.sgd(1e-2)
    opt_state = jax.vmap(tx.init)(params)
    folds = [batch(8, seed=s) for s in (1, 2)]
    inputs = jax.tree.map(lambda *x: jnp.stack(x), *folds)
    labels = jnp.array([[0, 1, 2, 0, 1, 2, 0, 1], [2, 2, 1, 1, 0, 0, 2, 1]])

    def step(params, stats, opt_state, inputs, labels):
        def loss_of(params):
            model = nnx.merge(graphdef, params, stats, copy=True)
            logits = model(inputs, train=True)
            loss = losses.focal_loss(logits, labels, jnp.full(3, 2 / 3))
            return loss, (logits, nnx.state(model, nnx.BatchStat))
        (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state, loss, logits

    step = jax.jit(jax.vmap(step))
    new_params, new_stats, opt_state, first_loss, logits = step(params, stats, opt_state, inputs, labels)
    assert logits.shape == (2, 8, 3) and bool(jnp.isfinite(logits).all())
    mean = new_stats["flow_streams"][0]["blocks"][0]["bn1"]["mean"][...]
    assert mean.shape == (2, 8) and not np.allclose(mean[0], mean[1]) and np.abs(mean).sum() > 0
    loss = step(new_params, new_stats, opt_state, inputs, labels)[3]
    print("focal loss per fold before and after one SGD step:", first_loss, loss)
    assert bool((loss < first_loss).all())
