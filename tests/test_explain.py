"""mer_jax.analysis.explain: Grad-CAM against a hand computation and on every convolutional network's tiny
form, a map that localises, EDMDBN token attention and MADV-Net rollout shapes and ranges, rollout of
identity and uniform attention, overlays and the figure."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from matplotlib import colormaps
from test_dfrnet import SMALL as DFR_SMALL
from test_edmdbn import TINY as EDMDBN_TINY
from test_madvnet import TINY as MADV_TINY
from test_madvnet import tiny_inputs as madv_inputs
from test_madvnet import tiny_model as madv_model

from mer_jax.analysis import explain
from mer_jax.models.dfrnet import DFRNet
from mer_jax.models.dstnet import DSTNet
from mer_jax.models.edmdbn import EDMDBN
from mer_jax.models.m3enet import M3ENet


class Toy(nnx.Module):
    """One 3x3 convolution (C channels), global average pooling, a linear head: Grad-CAM has a closed form,
    w_c = W[c, k] / (H W), since d y_k / d A_c(h, w) = W[c, k] / (H W)."""

    def __init__(self, channels=2, classes=2, *, rngs):
        self.conv = nnx.Conv(1, channels, (3, 3), padding=1, rngs=rngs)
        self.head = nnx.Linear(channels, classes, rngs=rngs)

    def __call__(self, inputs, *, train):
        return self.head(self.conv(inputs["image"]).mean(axis=(1, 2)))


def in_range(m):
    m = np.asarray(m)
    return np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0 + 1e-6


def test_grad_cam_matches_the_closed_form_of_a_one_conv_model():
    model = Toy(rngs=nnx.Rngs(0))
    image = jax.random.normal(jax.random.key(1), (3, 8, 8, 1))
    maps = explain.grad_cam(model, {"image": image}, layer="conv", target_class=1)
    a = np.asarray(model.conv(image))                                   # [B, 8, 8, C]
    w = np.asarray(model.head.kernel[...])[:, 1] / 64.0                 # w_c = W[c, 1] / (H W)
    cam = np.maximum((a * w).sum(-1), 0.0)
    peak = cam.reshape(3, -1).max(1)[:, None, None]
    expected = np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)
    assert set(maps) == {"conv"} and maps["conv"].shape == (3, 8, 8)
    np.testing.assert_allclose(maps["conv"], expected, atol=1e-5)
    assert not isinstance(model.conv, explain._Tap)                    # the model itself is untouched
    hits = explain._grad_cam_function.cache_info().hits
    again = explain.grad_cam(model, {"image": image + 1.0}, layer="conv", target_class=1)   # same shapes: cached
    assert explain._grad_cam_function.cache_info().hits == hits + 1 and again["conv"].shape == (3, 8, 8)


def test_grad_cam_peaks_in_the_quadrant_that_holds_the_evidence():
    """A constructed linear model: identity convolution, class 0 reads the mean of the map. Evidence (a bright
    blob) in one quadrant gives a map that peaks in that quadrant, for every quadrant."""
    model = Toy(channels=1, rngs=nnx.Rngs(0))
    kernel = np.zeros((3, 3, 1, 1), np.float32)
    kernel[1, 1] = 1.0
    model.conv.kernel[...] = jnp.asarray(kernel)
    model.conv.bias[...] = jnp.zeros(1)
    model.head.kernel[...] = jnp.array([[1.0, -1.0]])
    image = np.zeros((4, 16, 16, 1), np.float32)
    corners = [(2, 2), (2, 10), (10, 2), (10, 10)]
    for i, (y, x) in enumerate(corners):
        image[i, y:y + 4, x:x + 4] = 1.0
    maps = np.asarray(explain.grad_cam(model, {"image": jnp.asarray(image)}, layer={"map": "conv"})["map"])
    for i, (y, x) in enumerate(corners):
        py, px = np.unravel_index(maps[i].argmax(), maps[i].shape)
        assert (py >= 8) == (y >= 8) and (px >= 8) == (x >= 8)
        assert maps[i].max() == pytest.approx(1.0)
    assert explain.grad_cam(model, {"image": jnp.asarray(image)}, layer="conv", target_class=1)["conv"].max() == 0


def numpy_built(build):
    """The model `build` makes, built abstractly and filled from numpy (kernels N(0, 0.3^2), biases 0, BatchNorm
    scales and running variances 1, running means 0): an eager random initialisation costs seconds."""
    graphdef, state = nnx.split(nnx.eval_shape(build))
    rng = np.random.default_rng(0)

    def fill(path, x):
        name = str(path[-1].key)
        if name in ("scale", "var"):
            return np.ones(x.shape, x.dtype)
        if name in ("mean", "bias"):
            return np.zeros(x.shape, x.dtype)
        return rng.normal(scale=0.3, size=x.shape).astype(x.dtype)

    nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(fill, nnx.to_pure_dict(state)))
    return nnx.merge(graphdef, state)


def random_inputs(shapes):
    keys = jax.random.split(jax.random.key(0), len(shapes))
    return {name: jax.random.normal(k, (2,) + tuple(shape)) for k, (name, shape) in zip(keys, shapes.items())}


M3ENET_SHAPES = {"flow": (16, 16, 3), "frames": (16, 16, 3)}
DEFAULT_LAYER_CASES = {
    "m3enet": (lambda: M3ENet(3, rngs=nnx.Rngs(0), input_size=16), M3ENET_SHAPES,
               {"onset", "offset", "u", "v", "strain"}),
    "m3enet_flow": (lambda: M3ENet(3, rngs=nnx.Rngs(0), input_size=16, streams="flow"),
                    {"flow": M3ENET_SHAPES["flow"]}, {"u", "v", "strain"}),
    "dfrnet": (lambda: DFRNet(3, rngs=nnx.Rngs(0), **DFR_SMALL), DFRNet.input_shapes(DFR_SMALL["input_size"]),
               {"resnet", "apex", "flow", "difference"}),
    "dstnet": (lambda: DSTNet(3, rngs=nnx.Rngs(0), input_size=64, spatial_stages=2), DSTNet.input_shapes(64),
               {"spatial", "temporal"}),
}


@pytest.mark.parametrize("case", [
    "m3enet", "dstnet", pytest.param("m3enet_flow", marks=pytest.mark.slow),
    pytest.param("dfrnet", marks=pytest.mark.slow)])
def test_grad_cam_default_layers_of_the_convolutional_networks(case):
    """One map per stream, at the input size, in [0, 1]; ablation variants skip the streams they lack."""
    build, shapes, names = DEFAULT_LAYER_CASES[case]
    maps = explain.grad_cam(numpy_built(build), random_inputs(shapes))
    size = next(iter(shapes.values()))[:2]
    assert set(maps) == names
    for name, m in maps.items():
        assert m.shape == (2,) + tuple(size) and in_range(m), name
        assert float(m.max()) == pytest.approx(1.0) or float(m.max()) == 0.0, name


def test_grad_cam_names_bad_layers():
    model = Toy(rngs=nnx.Rngs(0))
    inputs = {"image": jnp.zeros((1, 8, 8, 1))}
    with pytest.raises(ValueError, match="no layer 'nope'"):
        explain.grad_cam(model, inputs, layer="nope")
    with pytest.raises(ValueError, match="no default layers for Toy"):
        explain.grad_cam(model, inputs)
    with pytest.raises(ValueError, match="not a map"):
        explain.grad_cam(model, inputs, layer="head")
    with pytest.raises(ValueError, match=r"target_class must be integers in \[0, 2\)"):
        explain.grad_cam(model, inputs, layer="conv", target_class=2)


def test_edmdbn_token_attention_per_stage_at_the_input_size():
    model = numpy_built(lambda: EDMDBN(3, rngs=nnx.Rngs(0), **EDMDBN_TINY))
    s = EDMDBN_TINY["input_size"]
    inputs = random_inputs(EDMDBN.input_shapes(input_size=s, num_frames=EDMDBN_TINY["num_frames"]))
    maps = explain.edmdbn_token_attention(model, inputs)
    assert set(maps) == {"entire", "detail"}
    graphdef, state = nnx.split(model)
    raw = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x, train=False, return_attention=True)[1])(state, inputs)
    for branch, m in maps.items():
        assert m.shape == (2, len(EDMDBN_TINY["depths"]), s, s) and in_range(m)
        # the last stage's 2 x 2 tokens cover 8 x 8 pixels each: the upsampled map keeps each token's mean
        block_means = np.asarray(m[:, -1]).reshape(2, 2, 8, 2, 8).mean(axis=(2, 4))
        np.testing.assert_allclose(block_means, np.asarray(raw[branch][-1].mean(axis=1)), atol=0.05)


def test_token_maps_cover_the_padded_image_then_crop():
    """A 3 x 3 grid of 8 x 8 tokens over a 20 x 20 image (padded to 24): token (2, 2) covers pixels 16-19."""
    tokens = jnp.zeros((1, 3, 3)).at[0, 2, 2].set(1.0)
    image = np.asarray(explain._token_map_to_image(tokens, 8, (20, 20)))
    assert image.shape == (1, 20, 20)
    assert image[0, 16:, 16:].min() > 0.3 and image[0, :12, :12].max() == 0.0        # bilinear: 0.56^2 at 16
    assert min(np.unravel_index(image[0].argmax(), (20, 20))) >= 16


def test_rollout_of_identity_and_uniform_attention_is_uniform_over_the_grid():
    eye = jnp.broadcast_to(jnp.eye(5), (2, 3, 5, 5))
    rollout = explain.attention_rollout([eye, eye])
    np.testing.assert_allclose(rollout, np.broadcast_to(np.eye(5), (2, 5, 5)), atol=1e-6)
    assert np.ptp(np.asarray(rollout[:, 0, 1:])) == 0                   # class row: the same on every grid token
    uniform = jnp.full((2, 3, 5, 5), 0.2)
    rollout = explain.attention_rollout([uniform, uniform, uniform])
    np.testing.assert_allclose(rollout.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(rollout[:, 0, 1:], rollout[0, 0, 1], atol=1e-6)
    a = jax.nn.softmax(jax.random.normal(jax.random.key(0), (1, 2, 4, 4)), -1)
    b = jax.nn.softmax(jax.random.normal(jax.random.key(1), (1, 2, 4, 4)), -1)
    half = lambda x: 0.5 * (x.mean(1) + jnp.eye(4))
    np.testing.assert_allclose(explain.attention_rollout([a, b]), half(b) @ half(a), atol=1e-6)


def test_madvnet_rollout_maps_frames_and_reuses_the_model_attention():
    model = madv_model()
    inputs = madv_inputs(batch=2)
    maps = explain.madvnet_rollout(model, inputs)
    assert set(maps) == {"texture"}
    t, s = MADV_TINY["num_frames"], MADV_TINY["input_size"]
    assert maps["texture"].shape == (2, t, s, s) and in_range(maps["texture"])
    assert float(maps["texture"].max()) == pytest.approx(1.0)
    # the recomputed weights reproduce the attention's output: out(weights @ v) == the layer's own output
    layer = model.texture_encoder.stages[-1].layers[0]
    grid = jax.random.normal(jax.random.key(0), (2, 1, 2, 2, 8))          # [B, T, H, W, d], L = 1 + 4
    cls = jax.random.normal(jax.random.key(1), (2, 1, 8))
    weights = explain._attention_weights(layer.attn, grid, cls, train=False)
    v = layer.attn.v(grid, cls, train=False)
    heads = layer.attn.num_heads
    v = v.reshape(2, 5, heads, -1).transpose(0, 2, 1, 3)
    y = (weights @ v).transpose(0, 2, 1, 3).reshape(2, 5, -1)
    np.testing.assert_allclose(layer.attn.out(y), layer.attn(grid, cls, train=False), atol=1e-5)


def test_overlay_keeps_the_frame_where_the_heat_map_is_zero():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)
    heat = np.zeros((6, 6))
    heat[:3] = 1.0
    out = explain.overlay(frame, heat, alpha=1.0)
    assert out.dtype == np.uint8 and out.shape == (6, 6, 3)
    np.testing.assert_array_equal(out[3:], frame[3:])
    np.testing.assert_array_equal(out[:3], np.round(255 * np.asarray(colormaps["jet"](1.0)[:3])).astype(np.uint8)
                                  + np.zeros((3, 6, 3), np.uint8))
    grey = explain.overlay(np.linspace(-1, 1, 36).reshape(6, 6), np.zeros((6, 6)))
    assert grey[0, 0].tolist() == [0, 0, 0] and grey[-1, -1].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="same H, W"):
        explain.overlay(frame, np.zeros((5, 6)))


def test_explanation_figure_draws_one_row_per_frame(tmp_path):
    frames = [np.zeros((8, 8)), np.ones((8, 8, 3), np.float32)]
    heat = {"u": np.eye(8), "v": np.ones((8, 8))}
    fig = explain.explanation_figure(frames, [heat, heat], titles=["a", "b"], path=tmp_path / "x.png")
    assert len(fig.axes) == 2 * 3 and (tmp_path / "x.png").stat().st_size > 0
    with pytest.raises(ValueError, match="one heat-map list per frame"):
        explain.explanation_figure(frames, [heat])
