"""RAFT (mer_jax/features/raft.py) and its torchvision weight converter (mer_jax/convert/raft_weights.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.convert.raft_weights import load_torchvision_raft, raft_entries
from mer_jax.convert.torch_checkpoint import load_state_dict, write_state_dict
from mer_jax.features import raft


def _abstract(variant):
    return nnx.eval_shape(lambda: raft.RAFT(variant, rngs=nnx.Rngs(0)))


def _torchvision_state_dict(model, seed=0):
    """Random values under every torchvision key of `model` (BatchNorm counters included, as torch saves):
    convolution weights U(+-1/sqrt(fan_in)) as torch initialises them, vectors U(-0.1, 0.1), variances > 0."""
    rng = np.random.default_rng(seed)
    entries, optional = raft_entries(model)
    state = {}
    for key, _, shape, _ in entries:
        bound = np.prod(shape[1:]) ** -0.5 if len(shape) == 4 else 0.1
        low = 0.5 if key.endswith("running_var") else -bound
        state[key] = rng.uniform(low, low + 2 * bound if low < 0 else 1.5, shape).astype(np.float32)
    state.update({key: np.array(7, np.int64) for key in optional})
    return state


@pytest.fixture(scope="module")
def models():
    """Both variants filled from torchvision-like state_dicts (eval_shape + converter: no random init,
    which compiles one program per layer shape and takes tens of seconds on 2 CPU cores)."""
    built = {}
    for variant in ("large", "small"):
        built[variant] = _abstract(variant)
        load_torchvision_raft(built[variant], _torchvision_state_dict(built[variant]))
    return built


def _bilinear_zeros(image, x, y):
    """grid_sample(bilinear, zeros, align_corners=True) of a 2-D map at pixel (x, y), corner by corner."""
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    total = 0.0
    for xi, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
        for yi, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            if 0 <= xi < image.shape[1] and 0 <= yi < image.shape[0]:
                total += wx * wy * image[yi, xi]
    return total


def test_correlation_pyramid_matches_numpy():
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(2, 2, 8, 6, 5)).astype(np.float32)
    pyramid = raft.correlation_pyramid(jnp.asarray(f1), jnp.asarray(f2), num_levels=3)
    corr = np.zeros((2, 8, 6, 8, 6))
    for b, i, j, k, l in np.ndindex(corr.shape):
        corr[b, i, j, k, l] = f1[b, i, j] @ f2[b, k, l] / np.sqrt(5)
    expected = [corr]
    for _ in range(2):  # 2x2 means, an odd last row / column dropped (8x6 -> 4x3 -> 2x1)
        prev = expected[-1]
        h, w = prev.shape[3] // 2, prev.shape[4] // 2
        pooled = np.zeros(prev.shape[:3] + (h, w))
        for y, x in np.ndindex(h, w):
            pooled[..., y, x] = prev[..., 2 * y:2 * y + 2, 2 * x:2 * x + 2].mean(axis=(-2, -1))
        expected.append(pooled)
    assert [p.shape for p in pyramid] == [(2, 8, 6, 8, 6), (2, 8, 6, 4, 3), (2, 8, 6, 2, 1)]
    for ours, ref in zip(pyramid, expected):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_lookup_matches_numpy_bilinear_with_zeros_outside():
    rng = np.random.default_rng(1)
    radius, (h, w) = 2, (4, 5)
    pyramid = [rng.normal(size=(1, h, w, 4, 5)), rng.normal(size=(1, h, w, 2, 2)), rng.normal(size=(1, h, w, 1, 1))]
    # Centres inside, between pixels, on the border and well outside the level-0 map.
    coords = np.stack([rng.uniform(-4.0, 9.0, (1, h, w)), rng.uniform(-4.0, 8.0, (1, h, w))], -1)
    coords[0, 0, 0] = (-6.5, 2.25)
    coords[0, 0, 1] = (3.0, 1.0)
    features = raft.lookup([jnp.asarray(p, jnp.float32) for p in pyramid], jnp.asarray(coords, jnp.float32), radius)
    side = 2 * radius + 1
    assert features.shape == (1, h, w, 3 * side * side)
    expected = np.zeros(features.shape)
    for i, j in np.ndindex(h, w):
        for level, corr in enumerate(pyramid):
            cx, cy = coords[0, i, j] / 2 ** level
            for dx, dy in np.ndindex(side, side):  # channel order: level, x offset, y offset (torchvision's)
                expected[0, i, j, level * side * side + dx * side + dy] = _bilinear_zeros(
                    corr[0, i, j], cx + dx - radius, cy + dy - radius)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(features)[0, 0, 0, :side * side] == 0)  # x - 6.5 + 2 < -1: all outside


def test_convex_and_bilinear_upsampling_match_numpy():
    rng = np.random.default_rng(2)
    h, w = 2, 3
    flow = rng.normal(size=(1, h, w, 2)).astype(np.float32)
    mask = rng.normal(size=(1, h, w, 9 * 64)).astype(np.float32)
    up = np.asarray(raft.convex_upsample(jnp.asarray(flow), jnp.asarray(mask)))
    padded = np.pad(8 * flow[0], ((1, 1), (1, 1), (0, 0)))
    expected = np.zeros((8 * h, 8 * w, 2))
    for i, j, a, b in np.ndindex(h, w, 8, 8):
        logits = np.array([mask[0, i, j, k * 64 + a * 8 + b] for k in range(9)])
        weights = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        neighbours = [padded[i + k // 3, j + k % 3] for k in range(9)]  # k = 3 dy + dx, as torch's unfold
        expected[8 * i + a, 8 * j + b] = sum(wk * n for wk, n in zip(weights, neighbours))
    np.testing.assert_allclose(up[0], expected, rtol=1e-5, atol=1e-5)

    bilinear = np.asarray(raft.bilinear_upsample(jnp.asarray(flow)))
    ys, xs = np.arange(8 * h) * (h - 1) / (8 * h - 1), np.arange(8 * w) * (w - 1) / (8 * w - 1)
    for c in range(2):  # align_corners=True: output corners on input corners; separable linear interpolation
        rows = np.stack([np.interp(xs, np.arange(w), flow[0, i, :, c]) for i in range(h)])
        ref = np.stack([np.interp(ys, np.arange(h), rows[:, x]) for x in range(8 * w)], 1)
        np.testing.assert_allclose(bilinear[0, ..., c], 8 * ref, rtol=1e-5, atol=1e-5)


def test_parameter_counts_match_torchvision(models):
    for variant, model in models.items():
        count = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
        assert count == raft.TORCHVISION_NUM_PARAMS[variant] == {"large": 5_257_536, "small": 990_162}[variant]


# Names and shapes as torchvision's raft_large / raft_small have them (torchvision.models.optical_flow.raft).
TORCHVISION_KEYS = {
    "large": {"feature_encoder.convnormrelu.0.weight": (64, 3, 7, 7),
              "feature_encoder.layer2.0.downsample.0.weight": (96, 64, 1, 1),
              "context_encoder.layer1.0.convnormrelu1.1.running_var": (64,),
              "context_encoder.layer3.0.downsample.1.weight": (128,),
              "context_encoder.conv.weight": (256, 128, 1, 1),
              "update_block.motion_encoder.convcorr1.0.weight": (256, 324, 1, 1),
              "update_block.motion_encoder.conv.0.weight": (126, 256, 3, 3),
              "update_block.recurrent_block.convgru1.convz.weight": (128, 384, 1, 5),
              "update_block.recurrent_block.convgru2.convq.weight": (128, 384, 5, 1),
              "update_block.flow_head.conv1.weight": (256, 128, 3, 3),
              "mask_predictor.convrelu.0.weight": (256, 128, 3, 3),
              "mask_predictor.conv.weight": (576, 256, 1, 1)},
    "small": {"feature_encoder.layer1.0.convnormrelu3.0.weight": (32, 8, 1, 1),
              "feature_encoder.layer2.0.convnormrelu2.0.weight": (16, 16, 3, 3),
              "context_encoder.conv.weight": (160, 96, 1, 1),
              "update_block.motion_encoder.convcorr1.0.weight": (96, 196, 1, 1),
              "update_block.motion_encoder.convflow1.0.weight": (64, 2, 7, 7),
              "update_block.motion_encoder.conv.0.weight": (80, 128, 3, 3),
              "update_block.recurrent_block.convgru1.convz.weight": (96, 242, 3, 3),
              "update_block.flow_head.conv1.weight": (128, 96, 3, 3)},
}
ABSENT_KEYS = {"large": ["feature_encoder.convnormrelu.1.weight", "feature_encoder.layer1.0.downsample.0.weight"],
               "small": ["mask_predictor.conv.weight", "update_block.motion_encoder.convcorr2.0.weight",
                         "update_block.recurrent_block.convgru2.convz.weight",
                         "context_encoder.convnormrelu.1.running_mean"]}


@pytest.mark.parametrize("variant", ["large", "small"])
def test_converter_keys_follow_torchvision(models, variant):
    state = _torchvision_state_dict(models[variant])
    for key, shape in TORCHVISION_KEYS[variant].items():
        assert state[key].shape == shape, key
    assert not set(ABSENT_KEYS[variant]) & set(state)
    # Every torchvision parameter (not the BatchNorm buffers) adds up to torchvision's count.
    params = sum(v.size for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert params == raft.TORCHVISION_NUM_PARAMS[variant]


def test_converter_loads_values_transposed():
    model = _abstract("large")
    state = _torchvision_state_dict(model, seed=3)
    load_torchvision_raft(model, state)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(nnx.state(model)))  # nothing left abstract
    gru = model.update_block.recurrent_block[0]
    np.testing.assert_array_equal(gru.convz.kernel[...], state["update_block.recurrent_block.convgru1.convz.weight"]
                                  .transpose(2, 3, 1, 0))
    assert gru.convz.kernel.shape == (1, 5, 384, 128)
    np.testing.assert_array_equal(gru.convz.bias[...], state["update_block.recurrent_block.convgru1.convz.bias"])
    bn = model.context_encoder.layer1[0].convnormrelu1.bn
    for ours, key in ((bn.scale, "weight"), (bn.bias, "bias"), (bn.mean, "running_mean"), (bn.var, "running_var")):
        np.testing.assert_array_equal(ours[...], state[f"context_encoder.layer1.0.convnormrelu1.1.{key}"])
    np.testing.assert_array_equal(model.mask_predictor.conv.kernel[...],
                                  state["mask_predictor.conv.weight"].transpose(2, 3, 1, 0))


def test_converter_reads_a_torch_zip_file(tmp_path):
    """A raft_small .pth as torch.save writes it (zip format) goes through load_state_dict into the model."""
    model = _abstract("small")
    state = _torchvision_state_dict(model, seed=5)
    write_state_dict(tmp_path / "raft_small.pth", state, format="zip")
    load_torchvision_raft(model, load_state_dict(tmp_path / "raft_small.pth"))
    np.testing.assert_array_equal(model.update_block.motion_encoder.convflow1.conv.kernel[...],
                                  state["update_block.motion_encoder.convflow1.0.weight"].transpose(2, 3, 1, 0))


def test_converter_reports_each_bad_key_and_writes_nothing(models):
    model = models["small"]
    state = _torchvision_state_dict(model, seed=4)
    before = np.asarray(model.feature_encoder.conv.kernel[...]).copy()
    bad = dict(state)
    del bad["update_block.flow_head.conv2.bias"]
    bad["update_block.recurrent_block.convgru2.convz.weight"] = np.zeros((96, 242, 3, 3), np.float32)
    bad["context_encoder.conv.weight"] = np.zeros((160, 96, 3, 3), np.float32)
    with pytest.raises(ValueError) as error:
        load_torchvision_raft(model, bad)
    message = str(error.value)
    assert "missing keys ['update_block.flow_head.conv2.bias']" in message
    assert "unexpected keys ['update_block.recurrent_block.convgru2.convz.weight']" in message
    assert "context_encoder.conv.weight: expected shape (160, 96, 1, 1), found (160, 96, 3, 3)" in message
    np.testing.assert_array_equal(model.feature_encoder.conv.kernel[...], before)
    with pytest.raises(ValueError, match=r"raft_small one, the model was built as RAFT\('large'\)"):
        load_torchvision_raft(models["large"], state)


def test_forward_large_finite(models):
    rng = np.random.default_rng(5)
    first = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    flow = raft.raft_flow(models["large"], first, np.roll(first, 1, axis=2), num_updates=2)
    assert flow.shape == (2, 64, 64, 2) and bool(jnp.all(jnp.isfinite(flow)))
    with pytest.raises(ValueError, match="multiples of 8"):
        models["small"](jnp.zeros((1, 68, 64, 3)), jnp.zeros((1, 68, 64, 3)))


@nnx.jit
def _scan_and_loop(model, image1, image2):
    """The small model's 3 updates run by its lax.scan (all_updates) and by a Python loop of `update`."""
    flows = model(image1, image2, num_updates=3, all_updates=True)
    pyramid, hidden, context, coords0 = model.encode(image1, image2)
    coords1, looped = coords0, []
    for _ in range(3):
        hidden, coords1 = model.update(hidden, coords1, coords0, context, pyramid)
        looped.append(model.upsample(hidden, coords1 - coords0))
    return flows, jnp.stack(looped), model(image1, image2, num_updates=3)


def test_small_scan_matches_python_loop_of_updates(models):
    rng = np.random.default_rng(6)
    image1 = jnp.asarray(rng.uniform(-1, 1, (1, 64, 64, 3)), jnp.float32)
    flows, looped, last = _scan_and_loop(models["small"], image1, jnp.roll(image1, (2, -1), axis=(1, 2)))
    assert flows.shape == (3, 1, 64, 64, 2) and bool(jnp.all(jnp.isfinite(flows)))
    np.testing.assert_allclose(flows, looped, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(last, flows[-1], rtol=1e-4, atol=1e-4)
