"""MADV-Net: shapes through every stage and parameter count at full size (abstract), the losses of Eq. 18-23
and where their gradients go, the path ablations, bfloat16 compute, and Eq. 24-25 against XLA's FLOPs.

Tiny models are built abstractly and filled from numpy (an eager or jitted random initialisation of a
model with this many layers compiles for tens of seconds on 2 CPU cores)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from mer_jax.data.augment import AugmentConfig
from mer_jax.data.taxonomy import AU_VOCAB
from mer_jax.models import complexity, precision, registry
from mer_jax.models.madvnet import MADVNet, complexity_terms
from mer_jax.train import losses
from mer_jax.train.state import fold_keys, init_fold_states, model_graphdef
from mer_jax.train.step import fold_parallel, fold_values, train_step

K = 3
A = len(AU_VOCAB)
TINY = dict(num_frames=4, input_size=16, dims=(4, 8, 8), depths=(1, 1, 1), heads=(1, 2, 2), au_widths=(6, 5),
            embed_strides=((1, 2, 2), (1, 2, 2), (1, 2, 2)))


def tiny_model(**fields):
    """A tiny MADVNet with parameters drawn from numpy: kernels N(0, 0.3^2), biases 0.1 N(0, 1), LayerNorm and
    BatchNorm scales 1, running statistics 0 / 1, bottleneck gates at their init."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: MADVNet(K, rngs=nnx.Rngs(0), **{**TINY, **fields})))
    rng = np.random.default_rng(0)

    def fill(path, x):
        name = str(path[-1].key)
        if name in ("scale", "var"):
            return jnp.ones(x.shape, x.dtype)
        if name == "mean":
            return jnp.zeros(x.shape, x.dtype)
        if "gates" in str(path):
            return jnp.full(x.shape, 5.0, x.dtype)
        return jnp.asarray(rng.normal(scale=0.1 if name == "bias" else 0.3, size=x.shape), x.dtype)

    pure = jax.tree_util.tree_map_with_path(fill, nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)


def tiny_inputs(batch=4, frames=4, size=16):
    rng = np.random.default_rng(1)
    return {"texture": jnp.asarray(rng.normal(size=(batch, frames, size, size, 3)), jnp.float32),
            "depth": jnp.asarray(rng.normal(size=(batch, frames, size, size, 1)), jnp.float32),
            "au": jnp.asarray(rng.integers(0, 2, (batch, A)), jnp.float32)}


def full_size(**fields):
    return nnx.eval_shape(lambda: MADVNet(K, rngs=nnx.Rngs(0), **fields))


@pytest.fixture(scope="module")
def full():
    """The default (paper-size) model, abstract."""
    return full_size()


def closed_form_params(in_channels=4, streams=1, dims=(64, 192, 384), depths=(1, 2, 10),
                       grids=((8, 14, 14), (4, 7, 7), (2, 4, 4)), kernels=((3, 7, 7), (3, 3, 3), (3, 3, 3)), s=3,
                       ratio=4, au=(A, 64, 64), depth_channels=None):
    """Parameter count of MADVNet written out per module (the module docstrings' layers). `depth_channels`:
    the input channels of a second (depth) encoder, if any."""

    def encoder(c_in):
        n, widths = 0, (c_in,) + tuple(dims)
        for i, (d, depth) in enumerate(zip(dims, depths)):
            n += math.prod(kernels[i]) * widths[i] * d + 2 * d             # Conv3d (no bias) + BN
            n += math.prod(grids[i]) * d + (d if i == len(dims) - 1 else 0)  # position embedding, class token
            projection = s * s * d + 2 * d + d * d + d                      # depthwise, BN, pointwise
            n += depth * (4 * d + 3 * projection + d * d + d + 2 * ratio * d * d + ratio * d + d)
        d = dims[-1]
        return n + 2 * d + d * d + d + 27 * d * d + 2 * d                    # F_MLP; F_Conv + BN

    n = encoder(in_channels) + (encoder(depth_channels) if depth_channels else 0)
    n += sum(2 * streams * c + (streams * c + 1) * K for c in dims)         # level heads: LN + Linear
    n += sum(a * b + 2 * b for a, b in zip(au[:-1], au[1:])) + (au[-1] + 1) * K   # AU layers + gates, f_n
    return n + (2 * streams * dims[-1] + au[-1] + 1) * K                    # F_LR


def test_parameter_count_in_closed_form(full):
    counted = complexity.count_params(full)
    assert counted == closed_form_params()
    tiny = dict(dims=TINY["dims"], depths=TINY["depths"], grids=((2, 4, 4), (1, 2, 2), (1, 1, 1)), au=(A, 6, 5))
    assert complexity.count_params(tiny_model()) == closed_form_params(**tiny)
    assert complexity.count_params(tiny_model(depth_fusion="stream")) == \
        closed_form_params(in_channels=3, streams=2, depth_channels=1, **tiny)
    print(f"MADV-Net K={K}: {counted:,} parameters (depth as a fourth channel); the paper reports none")


def test_shapes_through_every_stage_at_full_size(full):
    """16 x 112 x 112 clips: tokens 8x14x14 (64), 4x7x7 (192), 2x4x4 + class (384); heads and fusion."""
    graphdef, state = nnx.split(full)
    shapes = MADVNet.input_shapes()
    assert shapes == {"texture": (16, 112, 112, 3), "depth": (16, 112, 112, 1), "au": (A,)}
    inputs = {k: jax.ShapeDtypeStruct((2,) + v, jnp.float32) for k, v in shapes.items()}

    def run(state, inputs):
        model = nnx.merge(graphdef, state)
        x = jnp.concatenate([inputs["texture"], inputs["depth"]], -1)
        per_stage = []
        for stage in model.texture_encoder.stages:
            embedded, x, cls = stage(x, train=True)
            per_stage.append((embedded, x, cls))
        au, kl = model.au_encoder(inputs["au"], train=True)
        logits = model(inputs, train=True)
        return per_stage, au, kl, logits, model.auxiliary_losses(jnp.zeros(2, jnp.int32)), \
            model.level_logits.get_value()

    per_stage, au, kl, logits, aux, level_logits = jax.eval_shape(run, state, inputs)
    assert [(e.shape, g.shape, None if c is None else c.shape) for e, g, c in per_stage] == [
        ((2, 8, 14, 14, 64), (2, 8, 14, 14, 64), None), ((2, 4, 7, 7, 192), (2, 4, 7, 7, 192), None),
        ((2, 2, 4, 4, 384), (2, 2, 4, 4, 384), (2, 1, 384))]
    assert au.shape == (2, 64) and kl.shape == ()
    assert full.fusion.in_features == 2 * 384 + 64          # f_Att, f_Conv, f_AU (Eq. 14)
    assert logits.shape == (2, K) and [x.shape for x in level_logits] == [(2, K)] * 3
    assert {k: v.shape for k, v in aux.items()} == {"freq": (), "au": ()}


def test_losses_follow_eq_20_to_23_and_reach_the_parameters_they_should():
    """One jitted forward pass and a backward pass per term on a tiny model.

    Values: L_freq = a CE_low + b CE_mid + c CE_high (Eq. 20-23); L_AU = w (beta sum_i KL_i + BCE(f_n, one-hot
    y)) with KL_i = 1/2 sum (r z)^2 (z standardised by the batch, r = sigmoid(gate)); all finite.
    Gradients: the main term (the fused logits) reaches every visual stage, F_MLP, F_Conv, F_LR and the AU
    layers, not the level heads or f_n; L_freq the stages and level heads only; L_AU the AU layers, gates and
    f_n only."""
    model = tiny_model(freq_weights=(0.5, 0.25, 2.0), ib_beta=0.3, au_loss_weight=1.5)
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    inputs, labels = tiny_inputs(), jnp.array([0, 1, 2, 0])

    def terms(params):
        model = nnx.merge(graphdef, params, stats, copy=True)
        logits = model(inputs, train=True)
        aux = model.auxiliary_losses(labels)
        values = jnp.stack([losses.focal_loss(logits, labels, jnp.ones(K), gamma=2.0), aux["freq"], aux["au"]])
        return values, (model.level_logits.get_value(), model.au_terms.get_value(), bottleneck_by_hand(model))

    def bottleneck_by_hand(model):
        x, kl = inputs["au"], 0.0
        for fc, gate in zip(model.au_encoder.fcs, model.au_encoder.gates):
            h = jax.nn.relu(fc(x))
            x = jax.nn.sigmoid(gate[...]) * (h - h.mean(0)) / jnp.sqrt(h.var(0) + 1e-5)
            kl += 0.5 * jnp.sum(x ** 2, -1).mean()
        return kl

    def gradients(params):
        values, pullback, kept = jax.vjp(terms, params, has_aux=True)
        return values, kept, [pullback(jnp.eye(3)[i])[0] for i in range(3)]

    # Without backend optimisation the program compiles in less than half the time (as trainer.init_state).
    values, ((low, mid, high), (au_logits, kl), kl_by_hand), grads = jax.jit(
        gradients, compiler_options={"xla_backend_optimization_level": 0})(params)
    assert np.all(np.isfinite(values)) and np.all(values > 0)
    ce = lambda lg: optax.softmax_cross_entropy_with_integer_labels(lg, labels).mean()
    np.testing.assert_allclose(values[1], 0.5 * ce(low) + 0.25 * ce(mid) + 2.0 * ce(high), rtol=1e-5)
    bce = optax.sigmoid_binary_cross_entropy(au_logits, jax.nn.one_hot(labels, K)).sum(-1).mean()
    np.testing.assert_allclose(values[2], 1.5 * (0.3 * kl + bce), rtol=1e-5)
    np.testing.assert_allclose(kl, kl_by_hand, rtol=1e-4)

    largest = [{jax.tree_util.keystr(path): float(np.abs(g).max()) for path, g in
                jax.tree_util.tree_leaves_with_path(grads_of_term)} for grads_of_term in grads]
    assert all(np.isfinite(g) for term in largest for g in term.values())

    def reached(term, prefix):
        return any(g > 0 for name, g in largest[term].items() if name.startswith(prefix))

    stages = [f"['texture_encoder']['stages'][{s}]" for s in range(3)]
    att, conv = "['texture_encoder']['att_fc']", "['texture_encoder']['conv']"
    au_layers = ["['au_encoder']['fcs']", "['au_encoder']['gates']"]
    for prefix in stages + [att, conv, "['fusion']"] + au_layers:
        assert reached(0, prefix), prefix
    for prefix in ["['level_heads']", "['au_encoder']['classifier']"]:
        assert not reached(0, prefix), prefix
    for prefix in stages + ["['level_heads']", "['level_norms']"]:
        assert reached(1, prefix), prefix
    for prefix in [att, conv, "['fusion']", "['au_encoder']"]:
        assert not reached(1, prefix), prefix
    for prefix in au_layers + ["['au_encoder']['classifier']"]:
        assert reached(2, prefix), prefix
    for prefix in ["['texture_encoder']", "['level_heads']", "['fusion']"]:
        assert not reached(2, prefix), prefix


def test_eq_19_is_the_focal_loss_with_a_constant_alpha():
    """L_Multiclass = -mu (1 - p)^lambda log p (Eq. 19) is losses.focal_loss with alpha = mu for every class."""
    logits, labels = jnp.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]]), jnp.array([0, 2])
    mu, lam = 0.7, 1.5
    p = jax.nn.softmax(logits)[jnp.arange(2), labels]
    np.testing.assert_allclose(losses.focal_loss(logits, labels, jnp.full(K, mu), gamma=lam),
                               jnp.mean(-mu * (1 - p) ** lam * jnp.log(p)), rtol=1e-6)


def _abstract_call(model, inputs, train: bool, labels=None):
    """(logits, auxiliary losses or None, whether the call kept intermediates) of `model` on `inputs`, shapes
    and dtypes only."""
    graphdef, state = nnx.split(model)
    kept = []

    def run(state, inputs):
        model = nnx.merge(graphdef, state)
        logits = model(inputs, train=train)
        kept.append(hasattr(model, "level_logits"))
        return logits, (model.auxiliary_losses(labels) if train else None)

    logits, aux = jax.eval_shape(run, state, inputs)
    return logits, aux, kept[0]


@pytest.mark.parametrize("fields,keys,head_in", [
    ({}, ("texture", "depth", "au"), 2 * 8 + 5),
    ({"use_depth": False}, ("texture", "au"), 2 * 8 + 5),
    ({"use_au": False}, ("texture", "depth"), 2 * 8),
    ({"depth_fusion": "stream"}, ("texture", "depth", "au"), 4 * 8 + 5),
    ({"use_depth": False, "use_au": False, "conv_branch_input": "encoder"}, ("texture",), 2 * 8)])
def test_path_ablations_read_only_their_inputs(fields, keys, head_in):
    assert registry.model_inputs("madvnet", **fields) == keys
    shapes = registry.input_shapes("madvnet", **TINY, **fields)
    assert set(shapes) == set(keys) and shapes["texture"] == (4, 16, 16, 3)
    model = tiny_model(**fields)
    assert model.fusion.in_features == head_in
    inputs = {k: jax.ShapeDtypeStruct((2,) + shapes[k], jnp.float32) for k in keys}
    logits, _, kept = _abstract_call(model, inputs, train=False)
    assert logits.shape == (2, K) and not kept           # nothing is kept in eval mode
    _, aux, kept = _abstract_call(model, inputs, train=True, labels=jnp.zeros(2, jnp.int32))
    assert kept and set(aux) == ({"freq", "au"} if "au" in keys else {"freq"})


def test_bfloat16_compute_keeps_float32_parameters_and_losses():
    model = precision.set_compute_dtype(tiny_model(), jnp.bfloat16)
    inputs = {k: jax.ShapeDtypeStruct((2,) + v, jnp.float32) for k, v in MADVNet.input_shapes(**TINY).items()}
    logits, aux, _ = _abstract_call(model, inputs, train=True, labels=jnp.array([0, 1]))
    assert logits.dtype == jnp.bfloat16 and all(v.dtype == jnp.float32 for v in aux.values())
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert model.texture_encoder.stages[0].embed.conv.dtype == jnp.bfloat16


def test_bad_inputs_and_fields_are_named():
    model = tiny_model()
    inputs = tiny_inputs(batch=1)
    with pytest.raises(ValueError, match=r"inputs\['depth'\] must be \[B, 4, 16, 16, 1\]"):
        model({**inputs, "depth": inputs["texture"]}, train=False)
    with pytest.raises(ValueError, match=r"needs inputs\['au'\]"):
        model({"texture": inputs["texture"], "depth": inputs["depth"]}, train=False)
    with pytest.raises(ValueError, match="depth_fusion"):
        MADVNet(K, rngs=nnx.Rngs(0), depth_fusion="sum", **TINY)
    with pytest.raises(ValueError, match="one entry per pyramid level"):
        MADVNet(K, rngs=nnx.Rngs(0), **{**TINY, "depths": (1, 1)})
    with pytest.raises(ValueError, match="train=True first"):
        model.auxiliary_losses(jnp.zeros(1, jnp.int32))


def test_eq_24_25_complexity_against_xla_flops(full):
    """XLA's FLOPs of the full-size eval call = 2 x (the paper's multiply count + the products it omits)
    within 5%: the rest is element-wise work (BatchNorm, LayerNorm, GELU, softmax, max pool, residual adds),
    measured at 2.9% here. The paper's count alone (section 3.2.5) is 83% of the multiply-adds."""
    terms = complexity_terms(K)
    flops = complexity.flops_per_sample(full, {k: jax.ShapeDtypeStruct((1,) + v, jnp.float32)
                                                for k, v in MADVNet.input_shapes().items()})
    macs = terms["paper"] + terms["omitted"]
    print(f"MADV-Net: {flops / 1e9:.3f} GFLOPs (XLA); Eq. 24-25 + 3-D conv {terms['paper'] / 1e9:.3f}G multiplies "
          f"(conv {terms['conv3d'] / 1e9:.3f}G, transformer {terms['transformer'] / 1e9:.3f}G), omitted products "
          f"{terms['omitted'] / 1e9:.3f}G; XLA / 2 x all products = {flops / (2 * macs):.4f}")
    assert 1.0 < flops / (2 * macs) < 1.05
    assert 0.75 < terms["paper"] / macs < 0.9
    # A depth stream and no AU path, small: the element-wise share grows (11.7% at these widths).
    fields = {**TINY, "dims": (16, 32, 32), "depth_fusion": "stream", "use_au": False}
    terms = complexity_terms(K, **fields)
    flops = complexity.flops_per_sample(full_size(**fields), {
        k: jax.ShapeDtypeStruct((1,) + v, jnp.float32) for k, v in MADVNet.input_shapes(**fields).items()})
    assert 1.0 < flops / (2 * (terms["paper"] + terms["omitted"])) < 1.15


@pytest.mark.slow
def test_fold_parallel_train_step_with_the_auxiliary_losses():
    """Two folds of the tiny model, one jitted vmapped AdamW step (compiles for about a minute on 2 CPU
    cores): every fold's loss is finite, its parameters move, its BatchNorm statistics update."""
    make = lambda rngs: MADVNet(K, rngs=rngs, **TINY)
    tx = optax.adamw(1e-3)
    state = jax.jit(lambda keys: init_fold_states(make, tx, keys))(fold_keys(0, np.arange(2)))
    data = {k: v for k, v in tiny_inputs(batch=6).items()}
    data["label"] = jnp.arange(6) % K
    step = jax.jit(fold_parallel(train_step, graphdef=model_graphdef(make), tx=tx,
                                 loss_fn=lambda lg, y, a: losses.focal_loss(lg, y, a), input_keys=tuple(MADVNet.INPUTS),
                                 flow_keys=(), augment=AugmentConfig(variants=1)))
    ids = jnp.tile(jnp.arange(6), (2, 1))
    new, metrics = step(state, data, ids, jnp.zeros_like(ids), fold_values(jnp.ones((2, K)), jnp.ones(2, bool)),
                        jax.random.key(0))
    loss = jax.vmap(lambda m: m.compute())(metrics)["loss"]
    assert np.all(np.isfinite(loss)) and loss[0] != loss[1]
    assert jax.tree.structure(new["batch_stats"]) == jax.tree.structure(state["batch_stats"])
    assert not np.allclose(new["params"]["fusion"]["kernel"], state["params"]["fusion"]["kernel"])
    assert not np.allclose(new["params"]["au_encoder"]["classifier"]["kernel"],
                           state["params"]["au_encoder"]["classifier"]["kernel"])
