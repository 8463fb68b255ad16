"""Depth Anything (mer_jax/features/depth.py) and its transformers converter (mer_jax/convert/depth_anything_weights.py).

The default tests need neither torch nor transformers: state_dicts are NumPy dicts under transformers' key
names, written out below from transformers' DepthAnythingForDepthEstimation / Dinov2Backbone module layout.
The parity tests run when torch and transformers are installed."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.convert.depth_anything_weights import depth_anything_entries, load_transformers_depth_anything
from mer_jax.features import depth

TINY = depth.DepthAnythingSpec(hidden_size=32, num_layers=4, num_heads=2, position_grid=4, out_indices=(1, 2, 3, 4),
                               neck_hidden_sizes=(8, 16, 16, 32), fusion_hidden_size=16, head_hidden_size=8)


def transformers_shapes(spec: depth.DepthAnythingSpec) -> dict[str, tuple[int, ...]]:
    """Key -> shape of transformers' DepthAnythingForDepthEstimation state_dict for `spec` (mask token and the
    first fusion block's residual_layer1 included, as transformers builds them)."""
    d, p, f = spec.hidden_size, spec.patch_size, spec.fusion_hidden_size
    shapes = {"backbone.embeddings.cls_token": (1, 1, d), "backbone.embeddings.mask_token": (1, d),
              "backbone.embeddings.position_embeddings": (1, spec.position_grid ** 2 + 1, d),
              "backbone.embeddings.patch_embeddings.projection.weight": (d, 3, p, p),
              "backbone.embeddings.patch_embeddings.projection.bias": (d,),
              "backbone.layernorm.weight": (d,), "backbone.layernorm.bias": (d,)}

    def layer(name, out_features, in_features, kernel=None):
        shapes[f"{name}.weight"] = (out_features, in_features) + ((kernel, kernel) if kernel else ())
        shapes[f"{name}.bias"] = (out_features,)

    for i in range(spec.num_layers):
        prefix = f"backbone.encoder.layer.{i}"
        for name in ("norm1", "norm2"):
            shapes[f"{prefix}.{name}.weight"] = shapes[f"{prefix}.{name}.bias"] = (d,)
        for name in ("attention.attention.query", "attention.attention.key", "attention.attention.value",
                     "attention.output.dense"):
            layer(f"{prefix}.{name}", d, d)
        layer(f"{prefix}.mlp.fc1", spec.mlp_ratio * d, d)
        layer(f"{prefix}.mlp.fc2", d, spec.mlp_ratio * d)
        shapes[f"{prefix}.layer_scale1.lambda1"] = shapes[f"{prefix}.layer_scale2.lambda1"] = (d,)
    for i, (channels, factor) in enumerate(zip(spec.neck_hidden_sizes, spec.reassemble_factors)):
        layer(f"neck.reassemble_stage.layers.{i}.projection", channels, d, 1)
        if factor != 1:  # ConvTranspose2d (in, out, k, k) / Conv2d 3x3: both (channels, channels, k, k)
            layer(f"neck.reassemble_stage.layers.{i}.resize", channels, channels, int(factor) if factor > 1 else 3)
        shapes[f"neck.convs.{i}.weight"] = (f, channels, 3, 3)
        layer(f"neck.fusion_stage.layers.{i}.projection", f, f, 1)
        for unit in ("residual_layer1", "residual_layer2"):
            for conv in ("convolution1", "convolution2"):
                layer(f"neck.fusion_stage.layers.{i}.{unit}.{conv}", f, f, 3)
    layer("head.conv1", f // 2, f, 3)
    layer("head.conv2", spec.head_hidden_size, f // 2, 3)
    layer("head.conv3", 1, spec.head_hidden_size, 1)
    return shapes


def synthetic_state_dict(spec: depth.DepthAnythingSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 values under every transformers key: weights N(0, 1 / fan_in), vectors N(0, 0.5),
    LayerNorm scales 1 + N(0, 0.1) (a network whose depth is far from zero, unlike transformers' init)."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in transformers_shapes(spec).items():
        if "norm" in key and key.endswith(".weight"):
            state[key] = 1 + 0.1 * rng.normal(size=shape)
        elif key.endswith(".weight"):
            state[key] = rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))
        else:
            state[key] = 0.5 * rng.normal(size=shape)
        state[key] = state[key].astype(np.float32)
    return state


def _abstract(spec=TINY):
    return nnx.eval_shape(lambda: depth.DepthAnything(spec, rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def small():
    return _abstract(depth.SMALL)


@pytest.fixture(scope="module")
def tiny():
    """(the tiny network filled by the converter, its state_dict); eval_shape + converter, no random init."""
    state = synthetic_state_dict(TINY)
    model = _abstract()
    load_transformers_depth_anything(model, state)
    return model, state


@nnx.jit
def _forward(model, pixels):
    return model(pixels)


def test_small_shapes_and_parameter_count(small):
    model = small
    params = nnx.state(model, nnx.Param)
    count = sum(x.size for x in jax.tree.leaves(params))
    print(f"Depth Anything V2 Small: {count:,} parameters "
          f"(+ {depth.UNUSED_CHECKPOINT_PARAMS:,} unused in the checkpoint)")
    # transformers' count of Depth-Anything-V2-Small-hf, 24,785,089 (published: 24.8M), less the mask token and
    # the first fusion block's residual_layer1.
    assert count == 24_710_849 and count + depth.UNUSED_CHECKPOINT_PARAMS == depth.SMALL_NUM_PARAMS == 24_785_089
    assert sum(np.prod(s) for s in transformers_shapes(depth.SMALL).values()) == depth.SMALL_NUM_PARAMS
    assert model.backbone.embeddings.position_embeddings.shape == (1, 37 * 37 + 1, 384)
    assert len(model.backbone.layers) == 12 and model.backbone.layers[0].fc1.kernel.shape == (384, 1536)
    graphdef, state = nnx.split(model)
    out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state,
                         jax.ShapeDtypeStruct((2, 518, 686, 3), jnp.float32))
    assert out.shape == (2, 518, 686) and out.dtype == jnp.float32


def test_spec_checks_sizes():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        depth.DepthAnythingSpec(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="one entry per neck level"):
        depth.DepthAnythingSpec(out_indices=(3, 6, 9))
    with pytest.raises(ValueError, match="increase strictly"):
        depth.DepthAnythingSpec(out_indices=(3, 6, 13, 12))
    with pytest.raises(ValueError, match="reassemble factor 3.5"):
        depth.DepthAnythingSpec(reassemble_factors=(4, 2, 1, 3.5))


def test_converter_covers_every_transformers_key_with_its_shape(small):
    for spec, model in ((depth.SMALL, small), (TINY, _abstract())):
        entries, skipped = depth_anything_entries(model)
        shapes = transformers_shapes(spec)
        ours = {key: shape for key, _, shape, _ in entries}
        assert len(ours) == len(entries) and not set(ours) & set(skipped)
        assert {**ours, **skipped} == shapes
        assert set(skipped) == {"backbone.embeddings.mask_token"} | {
            f"neck.fusion_stage.layers.0.residual_layer1.convolution{i}.{kind}" for i in (1, 2) for kind in ("weight", "bias")}


def test_converter_layouts(tiny):
    model, state = tiny
    np.testing.assert_array_equal(model.head.conv1.kernel[...], state["head.conv1.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.neck.convs[2].kernel[...], state["neck.convs.2.weight"].transpose(2, 3, 1, 0))
    assert model.neck.convs[2].bias is None
    block = model.backbone.layers[1]
    np.testing.assert_array_equal(block.key.kernel[...], state["backbone.encoder.layer.1.attention.attention.key.weight"].T)
    np.testing.assert_array_equal(block.layer_scale2[...], state["backbone.encoder.layer.1.layer_scale2.lambda1"])
    np.testing.assert_array_equal(block.norm2.scale[...], state["backbone.encoder.layer.1.norm2.weight"])
    # ConvTranspose2d(k = stride = 4): out[4i + a, 4j + b, o] = sum_c x[i, j, c] W[c, o, a, b] + bias[o].
    x = np.random.default_rng(1).normal(size=(1, 2, 3, 8)).astype(np.float32)
    weight, bias = state["neck.reassemble_stage.layers.0.resize.weight"], state["neck.reassemble_stage.layers.0.resize.bias"]
    expected = np.einsum("nijc,coab->niajbo", x, weight).reshape(1, 8, 12, 8) + bias
    np.testing.assert_allclose(model.neck.reassemble[0].resize(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    assert model.neck.reassemble[2].resize is None and model.neck.reassemble[3].resize.strides == 2
    assert model.neck.fusion[0].residual_layer1 is None


def test_converter_errors_name_keys_and_shapes():
    state = synthetic_state_dict(TINY)
    del state["head.conv2.bias"]
    state["head.conv4.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    state["neck.convs.1.weight"] = np.zeros((16, 16, 1, 1), np.float32)
    state["backbone.embeddings.mask_token"] = np.zeros((1, 33), np.float32)
    state["backbone.layernorm.bias"] = np.zeros(32, np.int64)
    model = _abstract()  # one build for every call: nothing is written until a call succeeds
    with pytest.raises(ValueError) as error:
        load_transformers_depth_anything(model, state)
    message = str(error.value)
    for part in ("unexpected keys ['head.conv4.weight']", "missing keys ['head.conv2.bias']",
                 "neck.convs.1.weight: expected shape (16, 16, 3, 3), found (16, 16, 1, 1)",
                 "backbone.embeddings.mask_token: expected shape (1, 32), found (1, 33)",
                 "backbone.layernorm.bias: expected floating-point values, found dtype int64"):
        assert part in message
    assert isinstance(model.head.conv1.kernel.get_value(), jax.ShapeDtypeStruct)  # nothing was written
    # A state_dict of another size (V2 Base into Small, say) is named as such; the skipped keys are optional.
    other = synthetic_state_dict(dataclasses.replace(TINY, hidden_size=64, num_layers=5))
    with pytest.raises(ValueError, match="hidden size is 64, the model's 32.*5 backbone layers, the model 4"):
        load_transformers_depth_anything(model, other)
    lean = {k: v for k, v in synthetic_state_dict(TINY).items()
            if "mask_token" not in k and "layers.0.residual_layer1" not in k}
    load_transformers_depth_anything(model, lean)
    np.testing.assert_array_equal(model.head.conv3.bias[...], lean["head.conv3.bias"])
    with pytest.raises(TypeError, match="needs a DepthAnything"):
        load_transformers_depth_anything(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), lean)


FRAMES = (2, 42, 70)  # 3 x 5 patches: the 4 x 4 position grid is resized


def test_tiny_forward(tiny):
    model, _ = tiny
    x = np.random.default_rng(2).normal(size=(*FRAMES, 3)).astype(np.float32)
    out = np.asarray(_forward(model, jnp.asarray(x)))
    assert out.shape == FRAMES and np.isfinite(out).all() and out.min() >= 0 and out.std() > 1e-2
    # Frames are independent of each other (same shape: no second compilation).
    np.testing.assert_allclose(out[::-1], np.asarray(_forward(model, jnp.asarray(x[::-1]))), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="multiples of the patch size 14"):
        model(jnp.zeros((1, 42, 50, 3)))


def test_resampling_matrices():
    np.testing.assert_allclose(depth.bicubic_matrix(5, 5), np.eye(5), atol=1e-7)
    for matrix in (depth.bicubic_matrix(37, 23), depth.bicubic_matrix(4, 9), depth.bilinear_matrix(19, 37)):
        np.testing.assert_allclose(matrix.sum(1), 1, atol=1e-6)
    # torch's bicubic (A = -0.75) of [0, 1] at 4 samples: the first output is tap 1's weight at distance 1.25.
    assert depth.bicubic_matrix(2, 4)[0, 1] == pytest.approx(-0.10546875)
    line = depth.bilinear_matrix(3, 5) @ np.array([0.0, 2.0, 6.0])  # align_corners: ends kept, midpoints halved
    np.testing.assert_allclose(line, [0, 1, 2, 4, 6])


def test_network_size_follows_the_processor():
    assert depth.network_size(128, 128) == (518, 518)
    assert depth.network_size(480, 640) == (518, 686)    # height's scale 1.079 is closer to 1: 690.7 -> 686
    assert depth.network_size(400, 600) == (350, 518)    # width's scale 0.863 is closer to 1: 345.3 -> 350
    assert depth.network_size(20, 30, size=28) == (14, 28)      # width's scale 0.933: 18.7 -> 14, 28


def test_depth_frames_round_trip(tiny):
    model, _ = tiny
    # Frames already at the network size (size 42 keeps 42 x 70): both resizes are identities, so the depth is
    # the network's output on the ImageNet-normalised frames (uint8 read as / 255). 3 frames in batches of 2:
    # the second batch is padded with a blank frame.
    frames = np.random.default_rng(3).integers(0, 256, (3, *FRAMES[1:], 3)).astype(np.uint8)
    out = np.asarray(depth.depth_frames(model, frames, size=42, batch_size=2))
    assert out.shape == (3, *FRAMES[1:], 1) and out.dtype == np.float32
    pixels = jnp.asarray((frames / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
                         jnp.float32)
    for picked in ([0, 1], [2, 0]):  # FRAMES[0] = 2 frames a call: the shape test_tiny_forward compiled
        np.testing.assert_allclose(out[picked, ..., 0], np.asarray(_forward(model, pixels[np.array(picked)])),
                                   rtol=1e-4, atol=1e-5)
    # Frames of other sizes go through the network at network_size (here 28 x 42) and come back at their own.
    other = nnx.eval_shape(lambda m, f: depth.depth_frames(m, f, size=28), model,
                           jax.ShapeDtypeStruct((3, 20, 25, 3), jnp.float32))
    assert other.shape == (3, 20, 25, 1) and other.dtype == jnp.float32
    with pytest.raises(ValueError, match="uint8 .* or float"):
        depth.depth_frames(model, frames.astype(np.int32), size=28)
    with pytest.raises(ValueError, match=r"frames \[N, H, W, 3\]"):
        depth.depth_frames(model, frames[..., :2], size=28)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        depth.depth_frames(model, frames, batch_size=0)


def test_load_depth_anything_errors(tmp_path):
    for path, error in ((None, FileNotFoundError), (tmp_path / "missing.safetensors", FileNotFoundError),
                        (tmp_path, FileNotFoundError)):
        with pytest.raises(error, match="depth-anything/Depth-Anything-V2-Small-hf.*model.safetensors"):
            depth.load_depth_anything(path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    pytest.importorskip("safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file.*Depth-Anything-V2-Small-hf"):
        depth.load_depth_anything(tmp_path)


def test_load_depth_anything_from_safetensors(tmp_path, tiny):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model, state = tiny
    safetensors_numpy.save_file(state, str(tmp_path / "model.safetensors"))
    loaded = depth.load_depth_anything(tmp_path, spec=TINY)
    for ours, theirs in zip(jax.tree.leaves(nnx.state(loaded)), jax.tree.leaves(nnx.state(model))):
        np.testing.assert_array_equal(ours, theirs)
    wide = synthetic_state_dict(dataclasses.replace(TINY, hidden_size=64))
    safetensors_numpy.save_file(wide, str(tmp_path / "wide.safetensors"))
    with pytest.raises(ValueError, match="wide.safetensors: .*hidden size is 64.* and 63 more mismatches.*V2-Small-hf"):
        depth.load_depth_anything(tmp_path / "wide.safetensors", spec=TINY)


# ------------------------------------------------------------------------------------ parity with transformers
def _transformers_model(spec: depth.DepthAnythingSpec, state: dict[str, np.ndarray]):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")  # USE_TF=0 (the test's environment): no TensorFlow import
    backbone = transformers.Dinov2Config(
        hidden_size=spec.hidden_size, num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
        image_size=spec.position_grid * spec.patch_size, patch_size=spec.patch_size,
        out_indices=list(spec.out_indices), reshape_hidden_states=False)
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=spec.hidden_size, patch_size=spec.patch_size,
        neck_hidden_sizes=list(spec.neck_hidden_sizes), reassemble_factors=list(spec.reassemble_factors),
        fusion_hidden_size=spec.fusion_hidden_size, head_hidden_size=spec.head_hidden_size)
    model = transformers.DepthAnythingForDepthEstimation(config).eval()
    model.load_state_dict({key: torch.from_numpy(value) for key, value in state.items()}, strict=True)
    return model


def test_parity_with_transformers(tiny, tmp_path, monkeypatch):
    """A tiny randomly initialised transformers DepthAnythingForDepthEstimation, converted, gives our output
    within 1e-4, on a non-square input (position grid 4 x 4 resized bicubically to 3 x 5; the full-size
    test runs the pretraining grid); and load_depth_anything reads what save_pretrained writes."""
    monkeypatch.setenv("USE_TF", "0")
    torch = pytest.importorskip("torch")
    model, state = tiny
    reference = _transformers_model(TINY, state)
    assert set(reference.state_dict()) == set(state)  # our key list is transformers' own
    rng = np.random.default_rng(4)
    x = rng.normal(size=(*FRAMES, 3)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).predicted_depth.numpy()
    ours = np.asarray(_forward(model, jnp.asarray(x)))
    assert expected.std() > 1e-2 and np.abs(ours - expected).max() < 1e-4
    grid = torch.from_numpy(rng.normal(size=(1, 2, 4, 4)).astype(np.float32))
    resized = torch.nn.functional.interpolate(grid, size=(3, 7), mode="bicubic", align_corners=False).numpy()
    ours = depth.bicubic_matrix(4, 3) @ grid.numpy()[0, 0] @ depth.bicubic_matrix(4, 7).T
    np.testing.assert_allclose(ours, resized[0, 0], rtol=1e-5, atol=1e-6)
    pytest.importorskip("safetensors")
    reference.save_pretrained(tmp_path)
    loaded = depth.load_depth_anything(tmp_path, spec=TINY)
    for ours, theirs in zip(jax.tree.leaves(nnx.state(loaded)), jax.tree.leaves(nnx.state(model))):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_parity_with_transformers_full_size(small, monkeypatch):
    """V2 Small at full size, random weights under transformers' keys, on a 518 x 518 input (the pretraining
    grid, as depth_frames runs square faces): our output matches transformers' to float32 round-off."""
    monkeypatch.setenv("USE_TF", "0")
    torch = pytest.importorskip("torch")
    state = synthetic_state_dict(depth.SMALL, seed=5)
    state["head.conv3.weight"] = np.abs(state["head.conv3.weight"])  # of ReLU outputs: the depth is positive
    reference = _transformers_model(depth.SMALL, state)
    load_transformers_depth_anything(small, state)
    x = np.random.default_rng(6).normal(size=(1, 518, 518, 3)).astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).predicted_depth.numpy()
    ours = np.asarray(_forward(small, jnp.asarray(x)))
    scale = np.abs(expected).max()
    print(f"full-size parity: max |difference| {np.abs(ours - expected).max():.3g}, output max {scale:.3g}")
    assert (expected > 0).all() and expected.std() > 1e-2 * scale and np.abs(ours - expected).max() < 1e-4 * max(scale, 1.0)
