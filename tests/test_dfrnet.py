"""DFR-Net: parameter count (section 4.3), Eq. 9-14 against NumPy, Table 4/6/8 variants, BatchNorm modes."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.models import complexity
from mer_jax.models.dfrnet import (AttentionBlock, ChannelAttention, DFRNet, SpatialAttention,
                                   TemporalAttentionFusion)

SIZE = 16   # tiny inputs and widths for everything but the parameter counts; the shared widths let
# the runs reuse each other's compiled ops (most of the time here is compiling per-shape ops)
SMALL = dict(input_size=SIZE, shallow_features=8, fused_features=8, widths=(8, 8, 8, 8), ca_reduction=4)


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout   # weights + bias (layers.conv)


def block_params(cin, cout, *, downsample, attention="none"):
    """One Eq. 12 basic block: two conv3x3 + BN, conv1x1 + BN shortcut when the shape changes, CA, SA."""
    n = conv_params(3, cin, cout) + 2 * cout + conv_params(3, cout, cout) + 2 * cout
    if downsample or cin != cout:
        n += conv_params(1, cin, cout) + 2 * cout
    return n + ca_params(cout) * (attention in ("ca", "both")) + SA_PARAMS * (attention in ("sa", "both"))


def ca_params(c):
    return conv_params(1, c, c // 16) + conv_params(1, c // 16, c)   # Eq. 13, reduction 16


SA_PARAMS = conv_params(7, 2, 1)                                     # Eq. 14, 7 x 7
RESNET_BLOCKS = [(64, 64, False), (64, 64, False), (64, 128, True), (128, 128, False),
                 (128, 256, True), (256, 256, False)]                # ResNet-18 layers 1-3


def default_params(num_classes, attention="both"):
    shallow = 3 * conv_params(3, 3, 32)
    fusion = conv_params(3, 64, 64) + conv_params(3, 64, 64)                 # Eq. 9: f1, f2
    temporal = conv_params(1, 64 + 32, 64) + conv_params(1, 64, 64)          # Eq. 10: g1, g2
    stem = conv_params(7, 64, 64) + 2 * 64
    blocks = sum(block_params(i, o, downsample=d, attention=attention) for i, o, d in RESNET_BLOCKS)
    return shallow + fusion + temporal + stem + blocks + 256 * num_classes + num_classes


@functools.cache
def count(num_classes=3, **kwargs):
    """Parameters of DFRNet(num_classes, **kwargs), built abstractly (nnx.eval_shape)."""
    return complexity.count_params(nnx.eval_shape(lambda: DFRNet(num_classes, rngs=nnx.Rngs(0), **kwargs)))


def batch(size=2, input_size=SIZE, seed=0):
    keys = jax.random.split(jax.random.key(seed), 3)
    return {name: jax.random.normal(key, (size, input_size, input_size, 3))
            for name, key in zip(("apex", "flow", "difference"), keys)}


def np_conv(x, kernel, bias, padding):
    """Naive stride-1 NHWC convolution with zero padding: a sum over kernel offsets."""
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    k = kernel.shape[0]
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    h, w = padded.shape[1] - k + 1, padded.shape[2] - k + 1
    out = np.zeros(x.shape[:1] + (h, w, kernel.shape[-1]))
    for di in range(k):
        for dj in range(k):
            out += padded[:, di:di + h, dj:dj + w] @ kernel[di, dj]
    return out + np.asarray(bias)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0)


def np_channel_attention(ca, x):
    """Eq. 13 on x [B, H, W, C]: weights [B, 1, 1, C]."""
    x = np.asarray(x, np.float64)
    pooled = x.mean(axis=(1, 2), keepdims=True) + x.max(axis=(1, 2), keepdims=True)
    hidden = relu(np_conv(pooled, ca.f1.kernel[...], ca.f1.bias[...], 0))
    return np_sigmoid(np_conv(hidden, ca.f2.kernel[...], ca.f2.bias[...], 0))


def np_spatial_attention(sa, x):
    """Eq. 14 on x [B, H, W, C]: weights [B, H, W, 1]."""
    x = np.asarray(x, np.float64)
    stats = np.concatenate([x.mean(-1, keepdims=True), x.max(-1, keepdims=True)], -1)
    k = sa.f1.kernel.shape[0]
    return np_sigmoid(np_conv(stats, sa.f1.kernel[...], sa.f1.bias[...], k // 2))


def np_temporal_fusion(tf, fused, temporal, gate):
    """Eq. 10: F_fused * gate(g2(ReLU(g1([GAP(F_fused), GAP(F_t)]))))."""
    fused, temporal = np.asarray(fused, np.float64), np.asarray(temporal, np.float64)
    pooled = np.concatenate([fused.mean(axis=(1, 2), keepdims=True), temporal.mean(axis=(1, 2), keepdims=True)], -1)
    a = np_conv(relu(np_conv(pooled, tf.g1.kernel[...], tf.g1.bias[...], 0)), tf.g2.kernel[...], tf.g2.bias[...], 0)
    return fused * (np_sigmoid(a) if gate == "sigmoid" else relu(a))


@pytest.mark.parametrize("num_classes", [3, 5])
def test_param_count_closed_form(num_classes):
    n = count(num_classes)
    print(f"DFRNet K={num_classes}: {n:,} parameters (paper section 4.3: a little over 3M)")
    assert n == default_params(num_classes) == 3_086_282 + 257 * num_classes
    assert 3.0e6 <= n < 3.5e6


def test_fourth_layer_is_several_fold():
    """Table 9: going from 3 to 4 layers multiplies the parameter count several-fold."""
    three, four = (count(num_layers=n) for n in (3, 4))
    assert four - three == (block_params(256, 512, downsample=True, attention="both")
                            + block_params(512, 512, downsample=False, attention="both") + 256 * 3)
    assert 3 < four / three < 4


@pytest.mark.parametrize("attention", ["none", "ca", "sa"])
def test_attention_parameter_deltas(attention):
    delta = count() - count(attention=attention)
    channels = [o for _, o, _ in RESNET_BLOCKS]
    ca = sum(ca_params(c) for c in channels) * (attention in ("none", "sa"))
    sa = SA_PARAMS * len(channels) * (attention in ("none", "ca"))
    assert delta == ca + sa
    assert default_params(3, attention) == count(attention=attention)


@pytest.mark.parametrize("fusion, fusion_in, temporal", [
    ("add", 32, False), ("multiply", 32, False), ("concat", 96, False), ("proposed", 64, True)])
def test_fusion_parameter_counts(fusion, fusion_in, temporal):
    n = count(fusion=fusion)
    temporal_params = conv_params(1, 96, 64) + conv_params(1, 64, 64)
    assert n == default_params(3) - conv_params(3, 64, 64) + conv_params(3, fusion_in, 64) \
        - temporal_params * (not temporal)


def test_channel_attention_matches_eq13():
    ca = ChannelAttention(8, reduction=4, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(2), (3, 5, 6, 8))
    out = ca(x)
    assert out.shape == (3, 1, 1, 8)
    np.testing.assert_allclose(out, np_channel_attention(ca, x), rtol=1e-5, atol=1e-6)


def test_spatial_attention_matches_eq14():
    sa = SpatialAttention(kernel=7, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(3), (2, 9, 8, 5))
    out = sa(x)
    assert out.shape == (2, 9, 8, 1)
    np.testing.assert_allclose(out, np_spatial_attention(sa, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gate", ["relu", "sigmoid"])
def test_temporal_attention_fusion_matches_eq10(gate):
    tf = TemporalAttentionFusion(8, 8, hidden=8, gate=gate, rngs=nnx.Rngs(4))
    fused = jax.random.normal(jax.random.key(5), (2, 6, 7, 8))
    temporal = jax.random.normal(jax.random.key(6), (2, 6, 7, 8))
    np.testing.assert_allclose(tf(fused, temporal), np_temporal_fusion(tf, fused, temporal, gate),
                               rtol=1e-5, atol=1e-6)


def test_residual_block_matches_eq12():
    """Eval mode, fresh BatchNorm (mean 0, var 1, scale 1, shift 0): BN(y) = y / sqrt(1 + eps)."""
    block = AttentionBlock(8, 8, downsample=False, attention="both", ca_reduction=4, sa_kernel=7,
                           rngs=nnx.Rngs(7))
    x = jax.random.normal(jax.random.key(8), (2, 6, 6, 8))
    bn = lambda y: y / np.sqrt(1 + 1e-5)
    y = relu(bn(np_conv(x, block.conv1.kernel[...], block.conv1.bias[...], 1)))
    y = bn(np_conv(y, block.conv2.kernel[...], block.conv2.bias[...], 1))
    y = y * np_channel_attention(block.channel_attention, y)      # CA first, then SA (Eq. 12)
    y = y * np_spatial_attention(block.spatial_attention, y)
    expected = relu(np.asarray(x, np.float64) + y)
    np.testing.assert_allclose(block(x, train=False), expected, rtol=1e-4, atol=1e-5)


def test_proposed_fusion_matches_eq9_eq10():
    model = DFRNet(3, rngs=nnx.Rngs(9), **SMALL)
    inputs = batch()
    shallow = lambda layer, x: relu(np_conv(x, layer.kernel[...], layer.bias[...], 1))
    spatial = shallow(model.spatial_shallow, inputs["apex"])
    temporal = shallow(model.temporal_shallow, inputs["flow"])
    difference = shallow(model.difference_shallow, inputs["difference"])
    fused = shallow(model.fusion_conv1, np.concatenate([spatial, difference], -1))
    fused = shallow(model.fusion_conv2, fused)
    expected = np_temporal_fusion(model.temporal_attention, fused, temporal, "relu")
    np.testing.assert_allclose(model.fuse(inputs), expected, rtol=1e-4, atol=1e-5)


# Every fusion (Table 4), depth (Table 8) and attention (Table 6) at least once; pairs keep it short.
@pytest.mark.parametrize("kwargs", [
    {"fusion": "proposed", "num_layers": 3, "attention": "both"},
    {"fusion": "add", "num_layers": 1, "attention": "none", "image_channels": 1},
    {"fusion": "multiply", "num_layers": 2, "attention": "ca"},
    {"fusion": "concat", "num_layers": 4, "attention": "sa"},
    {"fusion": "proposed", "num_layers": 1, "attention": "ca", "temporal_gate": "sigmoid"},
])
def test_variants_give_finite_logits(kwargs):
    model = DFRNet(4, rngs=nnx.Rngs(0), **{**SMALL, **kwargs})
    inputs = batch()
    if kwargs.get("image_channels") == 1:
        inputs = {**inputs, "apex": inputs["apex"][..., :1], "difference": inputs["difference"][..., :1]}
    assert {k: v.shape[1:] for k, v in inputs.items()} == DFRNet.input_shapes(SIZE, **kwargs)
    assert model.fuse(inputs).shape == (2, SIZE, SIZE, SMALL["fused_features"])   # every fusion: [B, S, S, C_f]
    logits = model(inputs, train=False)
    assert logits.shape == (2, 4)
    assert np.isfinite(np.asarray(logits)).all()


def test_train_updates_batch_stats_and_eval_is_deterministic():
    model = DFRNet(3, rngs=nnx.Rngs(0), **{**SMALL, "num_layers": 1})
    inputs = batch(size=4)
    before = jax.tree.map(np.array, nnx.state(model, nnx.BatchStat))
    first = model(inputs, train=False)
    np.testing.assert_array_equal(first, model(inputs, train=False))
    jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.array, nnx.state(model, nnx.BatchStat)))
    model(inputs, train=True)
    after = nnx.state(model, nnx.BatchStat)
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: not np.allclose(a, b), before, after))
    assert all(changed) and len(changed) == 2 * (1 + 2 * 2)   # stem BN, 2 blocks x 2 BN
    assert not np.allclose(first, model(inputs, train=False))


def test_model_holds_only_params_and_batch_stats():
    model = nnx.eval_shape(lambda: DFRNet(3, rngs=nnx.Rngs(0), **SMALL))
    _, _, stats, rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    assert jax.tree.leaves(stats) and not jax.tree.leaves(rest)


@pytest.mark.parametrize("key, shape", [("flow", (2, SIZE, SIZE, 2)), ("apex", (2, SIZE + 1, SIZE, 3)),
                                        ("difference", (SIZE, SIZE, 3))])
def test_bad_input_shape_names_the_key(key, shape):
    model = DFRNet(3, rngs=nnx.Rngs(0), **{**SMALL, "num_layers": 1})
    inputs = {**batch(), key: jnp.zeros(shape)}
    with pytest.raises(ValueError, match=rf"inputs\['{key}'\] must be \[B, {SIZE}, {SIZE}, 3\]"):
        model(inputs, train=False)


@pytest.mark.parametrize("kwargs", [{"fusion": "sum"}, {"attention": "cbam"}, {"num_layers": 5},
                                    {"num_layers": 0}, {"temporal_gate": "tanh"}, {"sa_kernel": 4}])
def test_bad_fields_raise(kwargs):
    with pytest.raises(ValueError, match="DFRNet"):
        DFRNet(3, rngs=nnx.Rngs(0), **{**SMALL, **kwargs})


def test_inputs_and_shapes():
    assert DFRNet.inputs_for(fusion="add") == ("apex", "flow", "difference")
    assert DFRNet.input_shapes() == {"apex": (112, 112, 3), "flow": (112, 112, 3), "difference": (112, 112, 3)}


def dense_macs(size=112):
    """Multiply-adds of the default model at size x size, zero padding included (closed form)."""
    conv = lambda side, k, cin, cout: side * side * k * k * cin * cout
    macs = 3 * conv(size, 3, 3, 32) + 2 * conv(size, 3, 64, 64)       # shallow branches, Eq. 9 f1 f2
    macs += (64 + 32) * 64 + 64 * 64                                  # Eq. 10 g1, g2 on 1 x 1 maps
    side = size // 2
    macs += conv(side, 7, 64, 64)                                     # stem, stride 2
    side //= 2                                                        # max-pool
    for cin, cout, down in RESNET_BLOCKS:
        side //= 2 if down else 1
        macs += conv(side, 3, cin, cout) + conv(side, 3, cout, cout) + conv(side, 1, cin, cout) * down
        macs += cout * (cout // 16) * 2 + side * side * 49 * 2        # CA on 1 x 1, SA 7 x 7 over [mean, max]
    return macs + 256 * 3


def test_size_next_to_the_papers():
    """Section 4.3: "a little over 3 million" parameters. The paper's FLOPs sit in image-only tables
    (5, 7, 9), so ours are checked against the closed-form count: XLA skips the zero padding."""
    from mer_jax.models.paper_figures import PAPER_FIGURES

    paper = PAPER_FIGURES["dfrnet"]
    assert 1.0 <= count() / paper.params < 1.05 and paper.flops is None
    model = nnx.eval_shape(lambda: DFRNet(3, rngs=nnx.Rngs(0)))
    inputs = {k: jax.ShapeDtypeStruct((1,) + s, jnp.float32) for k, s in DFRNet.input_shapes().items()}
    flops = complexity.flops_per_sample(model, inputs)
    print(f"DFRNet at 112: {flops / 1e9:.2f} GFLOPs (XLA), dense {dense_macs() / 1e9:.2f} G multiply-adds")
    assert 1.90e9 < dense_macs() < 1.92e9
    assert 0.95 < flops / (2 * dense_macs()) < 1.0


def test_configs_hold_the_papers_settings():
    from configs import dfrnet

    paper, smoke = dfrnet.get_config(), dfrnet.get_config("smoke")
    t = paper.train
    assert (t.learning_rate, t.batch_size, t.num_epochs, t.early_stopping_patience, t.val_metric, t.selection,
            t.loss, t.weight_decay, t.schedule) == (1e-5, 32, 100, 10, "loss", "val", "cross_entropy", 0.0,
                                                    "constant")
    assert set(t.standardise_inputs) == set(DFRNet.inputs_for()) and t.eval_every_epochs == 1
    assert paper.augment.flip and paper.augment.max_shift_px > 0 and paper.augment.online
    f = paper.features
    assert (f.kind, f.strain, f.apex_difference, f.missing_apex) == ("keyframe_flow", "dfrnet", "rgb", "dc_rois")
    assert f.size == f.flow_size == paper.model.input_size == 112
    smoke.model.input_size = 40    # one shared value
    assert smoke.features.size == smoke.features.flow_size == 40
    with pytest.raises(ValueError, match="variant"):
        dfrnet.get_config("fast")


def test_smoke_loso_end_to_end(data_dir, tmp_path):
    """configs/dfrnet.py:smoke through train_and_evaluate: TV-L1 flow with Eq. 7 strain, apex and
    difference inputs, per-fold standardisation, early stopping on the validation loss, the report."""
    import json

    from configs import dfrnet
    from mer_jax import experiment

    config = dfrnet.get_config("smoke")
    config.dataset.data_dir = data_dir
    config.train.progress = False
    results = experiment.train_and_evaluate(config, tmp_path)
    assert results["protocol"]["num_folds"] == 6 and results["model"] == "dfrnet"
    assert results["selection"] == "val" and 0.0 <= results["uf1"] <= 1.0
    trained, selected = results["epochs_trained"], results["selected_epoch"]
    assert all(1 <= selected[f] <= trained[f] <= 3 for f in trained)
    assert "## Epochs per fold" in (tmp_path / "results.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["config"]["features"]["strain"] == "dfrnet"
