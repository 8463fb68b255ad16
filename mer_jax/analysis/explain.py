"""Explanations of a restored model's predictions: Grad-CAM for the convolutional networks, EDMDBN's
accumulated token attention, MADV-Net attention rollout, and overlays on the input frames.

The models are left untouched: Grad-CAM and the rollout work on a merged copy of the model inside the
jitted function, where a `_Tap` replaces the chosen submodule. A Grad-CAM tap returns the submodule's
output plus a zero array `delta`, so the gradient of the logit with respect to `delta` at 0 is its
gradient with respect to the feature map, and the forward math is unchanged. A rollout tap returns the
attention's own output and also recomputes its softmax weights from the same query and key projections.

Grad-CAM (Selvaraju et al., ICCV 2017): w_c = mean_{h,w} d y_k / d A_c, map = ReLU(sum_c w_c A_c),
bilinearly upsampled to the input size and divided by its maximum (an all-zero map stays zero).
Default layers (`GRAD_CAM_LAYERS`), the last convolutional stage of every stream:

| network | map name   | layer (path in the model)     | at the default size |
|---------|------------|-------------------------------|---------------------|
| M3ENet  | onset      | onset_stream.blocks.-1        | 6 x 6 (48 input)    |
|         | offset     | offset_stream.blocks.-1       | 6 x 6               |
|         | u, v, strain | flow_streams.{0,1,2}.blocks.-1 | 6 x 6             |
| DSTNet  | spatial    | spatial.blocks.-1 (residual3) | 8 x 8 (256 input)   |
|         | temporal   | temporal.convs.-1 (before its ReLU) | 28 x 28       |
| DFR-Net | resnet     | blocks.-1 (last ResNet layer) | 7 x 7 (112 input)   |
|         | apex, flow, difference | {spatial,temporal,difference}_shallow (before ReLU) | 112 x 112 |

DFR-Net's three branches meet after one shallow convolution each, so their maps are the shallow
convolutions' outputs (full resolution, before the ReLU the model applies) and the ResNet gives the
fused map. Streams an ablation variant lacks are skipped. The M3ENet grey encoder is shared by three
frames and is not tapped; its fused streams carry the onset/apex and offset/apex evidence.
"""
from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mer_jax.models.dfrnet import DFRNet
from mer_jax.models.dstnet import DSTNet
from mer_jax.models.edmdbn import EDMDBN
from mer_jax.models.m3enet import M3ENet
from mer_jax.models.madvnet import MADVNet

GRAD_CAM_LAYERS = {
    M3ENet: {"onset": "onset_stream.blocks.-1", "offset": "offset_stream.blocks.-1",
             "u": "flow_streams.0.blocks.-1", "v": "flow_streams.1.blocks.-1",
             "strain": "flow_streams.2.blocks.-1"},
    DSTNet: {"spatial": "spatial.blocks.-1", "temporal": "temporal.convs.-1"},
    DFRNet: {"resnet": "blocks.-1", "apex": "spatial_shallow", "flow": "temporal_shallow",
             "difference": "difference_shallow"},
}


class _Tap:
    """Stands in for a submodule: calls it, records its output and adds `delta` (Grad-CAM), or, with
    `attention=True`, also records the softmax weights of a conv_attention.ConvAttention."""

    def __init__(self, inner, delta=None, attention: bool = False):
        self.inner, self.delta, self.attention = inner, delta, attention
        self.outputs, self.weights = [], []

    def __call__(self, *args, **kwargs):
        y = self.inner(*args, **kwargs)
        if self.attention:
            self.weights.append(_attention_weights(self.inner, *args, **kwargs))
        self.outputs.append(y)
        return y if self.delta is None else y + self.delta


def _attention_weights(attention, grid, cls, *, train):
    """[B, heads, L, L] softmax weights of conv_attention.ConvAttention, from its own Q and K projections."""
    def split(x):
        b, n, d = x.shape
        return x.reshape(b, n, attention.num_heads, d // attention.num_heads).transpose(0, 2, 1, 3)
    q, k = split(attention.q(grid, cls, train=train)), split(attention.k(grid, cls, train=train))
    logits = (q * q.shape[-1] ** -0.5) @ k.swapaxes(-1, -2)
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


def _locate(model, path: str):
    """(parent, key, module) of a dotted path such as "flow_streams.0.blocks.-1"; integers index lists."""
    parent, key, node = None, None, model
    for part in path.split("."):
        parent, key = node, int(part) if part.lstrip("-").isdigit() else part
        try:
            node = parent[key] if isinstance(key, int) else getattr(parent, key)
        except (AttributeError, IndexError) as error:
            raise ValueError(f"{type(model).__name__} has no layer {path!r} (failed at {part!r})") from error
        if node is None:
            raise ValueError(f"{type(model).__name__} layer {path!r} is absent in this variant")
    return parent, key, node


def _install(parent, key, tap) -> None:
    if isinstance(key, int):
        parent[key] = tap
    else:
        setattr(parent, key, tap)


def _layers_for(model, layer) -> dict[str, str]:
    if isinstance(layer, str):
        return {layer: layer}
    if layer is not None:
        return dict(layer)
    if type(model) not in GRAD_CAM_LAYERS:
        raise ValueError(f"grad_cam has no default layers for {type(model).__name__}; pass layer= "
                         f"(known: {[m.__name__ for m in GRAD_CAM_LAYERS]})")
    present = {}
    for name, path in GRAD_CAM_LAYERS[type(model)].items():
        try:
            _locate(model, path)
        except ValueError:
            continue   # a stream this ablation variant does not have
        present[name] = path
    return present


def _spatial_size(inputs) -> tuple[int, int]:
    arrays = [x for x in jax.tree.leaves(inputs) if x.ndim >= 4]
    if not arrays:
        raise ValueError("grad_cam inputs hold no image batch [B, H, W, C] to upsample the maps to")
    return tuple(arrays[0].shape[-3:-1])


def _normalise(maps: jax.Array) -> jax.Array:
    """Divide every map (leading axis = batch) by its maximum; maps are >= 0, an all-zero map stays 0."""
    peak = maps.reshape(maps.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (maps.ndim - 1))
    return jnp.where(peak > 0, maps / jnp.where(peak > 0, peak, 1.0), 0.0)


def _cam(feature: jax.Array, gradient: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Grad-CAM of one feature map [B, h, w, C] and its gradient -> [B, H, W] in [0, 1]."""
    weights = gradient.mean(axis=(1, 2), keepdims=True)
    cam = jax.nn.relu((weights * feature).sum(-1))
    cam = jax.image.resize(cam, (cam.shape[0],) + tuple(size), "bilinear")
    return _normalise(jnp.clip(cam, 0.0))


def _compiled(factory, *args):
    """factory(*args) from its cache; a model whose structure holds an unhashable attribute (DSTNet's
    `expected` dict) cannot key a cache and gets a fresh jitted function (one compilation) per call."""
    try:
        hash(args)
    except TypeError:
        return factory.__wrapped__(*args)
    return factory(*args)


def grad_cam(model, inputs: dict, *, layer=None, target_class=None) -> dict[str, jax.Array]:
    """Grad-CAM maps {name: [B, H, W] in [0, 1]} of a batch (eval mode, BatchNorm running statistics).

    `layer`: None (the network's defaults, module docstring), a dotted path, or {name: path}; each
    path names a module whose output is an NHWC feature map. `target_class`: None (each sample's
    predicted class), an int, or [B] ints. Maps are upsampled to the inputs' H x W. The jitted function
    is kept per (model structure, layers, size), so later batches of the same shapes do not recompile.
    """
    paths = tuple(_layers_for(model, layer).items())
    graphdef, state = nnx.split(model)
    explain = _compiled(_grad_cam_function, graphdef, paths, _spatial_size(inputs), target_class is None)
    if target_class is None:
        return explain(state, inputs, None)
    batch = jax.tree.leaves(inputs)[0].shape[0]
    target = np.broadcast_to(np.asarray(target_class), (batch,))
    classes = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x, train=False), state, inputs).shape[-1]
    if not np.issubdtype(target.dtype, np.integer) or target.min() < 0 or target.max() >= classes:
        raise ValueError(f"grad_cam target_class must be integers in [0, {classes}), got {target_class!r}")
    return explain(state, inputs, jnp.asarray(target, jnp.int32))


@functools.lru_cache(maxsize=32)
def _grad_cam_function(graphdef, paths: tuple[tuple[str, str], ...], size: tuple[int, int], predicted: bool):
    """jit(state, inputs, target) -> {name: [B, H, W]} for one model structure and tuple of (name, path)."""
    paths = dict(paths)

    def run(state, inputs, deltas):
        copy = nnx.merge(graphdef, state)
        taps = {}
        for name, path in paths.items():
            parent, key, node = _locate(copy, path)
            taps[name] = _Tap(node, None if deltas is None else deltas[name])
            _install(parent, key, taps[name])
        logits = copy(inputs, train=False)
        for name, tap in taps.items():
            if len(tap.outputs) != 1:
                raise ValueError(f"grad_cam layer {paths[name]!r} runs {len(tap.outputs)} times per forward "
                                 f"pass; pick a layer that runs once")
        return logits, {name: tap.outputs[0] for name, tap in taps.items()}

    @jax.jit
    def explain(state, inputs, target):
        shapes = jax.eval_shape(lambda s, x: run(s, x, None)[1], state, inputs)
        for name, shape in shapes.items():
            if len(shape.shape) != 4:
                raise ValueError(f"grad_cam layer {paths[name]!r} gives {list(shape.shape)}, not a map [B, h, w, C]")
        deltas = {name: jnp.zeros(s.shape, s.dtype) for name, s in shapes.items()}

        def score(deltas):
            logits, features = run(state, inputs, deltas)
            k = logits.argmax(-1) if predicted else target
            return jnp.take_along_axis(logits, k[:, None], axis=-1).sum(), features

        gradients, features = jax.grad(score, has_aux=True)(deltas)
        return {name: _cam(features[name], gradients[name], size) for name in paths}

    return explain


def _token_map_to_image(a: jax.Array, stride: int, size: tuple[int, int]) -> jax.Array:
    """[B, h, w] token map, each token covering stride x stride pixels of the image zero-padded to h x w
    tokens -> [B, H, W] (resize to the padded extent, then crop the padding away)."""
    b, h, w = a.shape
    full = jax.image.resize(a, (b, h * stride, w * stride), "bilinear")
    return full[:, :size[0], :size[1]]


def edmdbn_token_attention(model: EDMDBN, inputs: dict) -> dict[str, jax.Array]:
    """EDMDBN's accumulated token-attention maps (Eq. 1-2, swin.py "Token attention"), {branch: [B, stages,
    S, S]}: each stage's map averaged over its time axis (D' = 1 in EDMDBN, so nothing is averaged there),
    upsampled to the input. Values are the model's attention weights (products of sigmoids, in [0, 1]),
    not rescaled, so stages can be compared."""
    graphdef, state = nnx.split(model)
    branch = model.entire_branch if model.entire_branch is not None else model.detail_branch
    patch = branch.patch_embed.patch_size[1]   # both branches share the spatial patch (EDMDBN checks)
    return _compiled(_edmdbn_function, graphdef, model.input_size, patch)(state, inputs)


@functools.lru_cache(maxsize=8)
def _edmdbn_function(graphdef, input_size: int, patch: int):
    size = (input_size, input_size)

    def to_image(m, stage):   # stage s tokens cover patch * 2^s pixels (s patch mergings)
        return jnp.clip(_token_map_to_image(m.mean(axis=1), patch * 2 ** stage, size), 0.0, 1.0)

    @jax.jit
    def run(state, inputs):
        _, attention = nnx.merge(graphdef, state)(inputs, train=False, return_attention=True)
        return {branch: jnp.stack([to_image(m, stage) for stage, m in enumerate(maps)], 1)
                for branch, maps in attention.items()}

    return run


def attention_rollout(attentions) -> jax.Array:
    """Abnar and Zuidema (2020): prod over layers (first to last) of (mean_heads A + I) / 2.
    `attentions`: [B, heads, L, L] per layer, in forward order; -> [B, L, L] (rows sum to 1)."""
    rollout = None
    for a in attentions:
        a = a.mean(axis=1)
        a = 0.5 * (a + jnp.eye(a.shape[-1], dtype=a.dtype))
        rollout = a if rollout is None else a @ rollout
    return rollout


def madvnet_rollout(model: MADVNet, inputs: dict) -> dict[str, jax.Array]:
    """Attention rollout of MADV-Net, {encoder: [B, T, S, S] in [0, 1]} ("texture", and "depth" with
    depth_fusion="stream"): the class token's row of the rollout over the LAST stage's layers, restricted
    to that stage's grid tokens, reshaped to its (T3, H3, W3) grid, resized to the clip's frames x S x S
    and divided by its maximum.

    Only the last stage has a class token. The earlier stages attend among grid tokens and hand their grid
    to the next stage through a strided Conv3d + MaxPool tokenizer, which is no attention and has no token
    correspondence to roll through, so they are not part of the product; their spatial support enters
    only through the resize of the last grid onto the frames (its receptive-field geometry)."""
    graphdef, state = nnx.split(model)
    frames = (model.num_frames, model.input_size, model.input_size)
    return _compiled(_rollout_function, graphdef, frames)(state, inputs)


@functools.lru_cache(maxsize=8)
def _rollout_function(graphdef, frames: tuple[int, int, int]):
    encoders = {"texture": "texture_encoder", "depth": "depth_encoder"}

    @jax.jit
    def run(state, inputs):
        copy = nnx.merge(graphdef, state)
        taps = {}
        for name, attr in encoders.items():
            encoder = getattr(copy, attr)
            if encoder is None:
                continue
            taps[name] = []
            for layer in encoder.stages[-1].layers:
                layer.attn = _Tap(layer.attn, attention=True)
                taps[name].append(layer.attn)
        copy(inputs, train=False)
        maps = {}
        for name, layer_taps in taps.items():
            rollout = attention_rollout([tap.weights[0] for tap in layer_taps])
            t, h, w = getattr(copy, encoders[name]).stages[-1].pos.shape[1:4]
            cls_row = rollout[:, 0, 1:].reshape(-1, t, h, w)
            resized = jax.image.resize(cls_row, (cls_row.shape[0],) + frames, "trilinear")
            maps[name] = _normalise(jnp.clip(resized, 0.0))
        return maps

    return run


def overlay(frame, heatmap, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """RGB uint8 [H, W, 3]: the frame blended with `cmap`(heatmap), weight alpha * heatmap per pixel, so
    where the heat map is 0 the frame is kept. `frame` [H, W], [H, W, 1] or [H, W, 3]: uint8 is read as
    0-255, floats are min-max scaled per frame; `heatmap` [H, W] in [0, 1]."""
    frame, heatmap = np.asarray(frame), np.asarray(heatmap, np.float64)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.shape[:2] != heatmap.shape or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[-1] != 3):
        raise ValueError(f"overlay needs a frame [H, W(, 1 or 3)] and a heat map [H, W] of the same H, W; "
                         f"got {list(frame.shape)} and {list(heatmap.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay alpha must be in [0, 1], got {alpha}")
    if frame.dtype == np.uint8:
        rgb = frame.astype(np.float64) / 255.0
    else:
        rgb = frame.astype(np.float64)
        low, high = rgb.min(), rgb.max()
        rgb = (rgb - low) / (high - low) if high > low else np.zeros_like(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, -1)
    heat = np.clip(heatmap, 0.0, 1.0)
    colour = colormaps[cmap](heat)[..., :3]
    weight = alpha * heat[..., None]
    return np.round(255.0 * ((1.0 - weight) * rgb + weight * colour)).astype(np.uint8)


def explanation_figure(frames, heatmaps, *, titles=None, alpha: float = 0.5, cmap: str = "jet",
                       path=None) -> Figure:
    """One row per frame: the frame, then its overlay with each heat map (e.g. one per stream).
    `frames`: N frames (module `overlay`); `heatmaps`: N lists (or dicts, keys as titles) of [H, W] maps."""
    if len(frames) != len(heatmaps):
        raise ValueError(f"explanation_figure needs one heat-map list per frame, got {len(frames)} frames "
                         f"and {len(heatmaps)} lists")
    rows = [list(h.items()) if isinstance(h, dict) else [(None, m) for m in h] for h in heatmaps]
    columns = 1 + max(len(r) for r in rows)
    fig = Figure(figsize=(2.2 * columns, 2.3 * len(frames)), layout="constrained")
    axes = fig.subplots(len(frames), columns, squeeze=False)
    for i, (frame, row) in enumerate(zip(frames, rows)):
        shown = overlay(frame, np.zeros(np.asarray(frame).shape[:2]), alpha=0.0)
        axes[i, 0].imshow(shown)
        axes[i, 0].set_title(titles[i] if titles is not None else f"frame {i}", fontsize=8)
        for j in range(1, columns):
            if j <= len(row):
                name, heat = row[j - 1]
                axes[i, j].imshow(overlay(frame, heat, alpha=alpha, cmap=cmap))
                axes[i, j].set_title(name if name is not None else f"map {j}", fontsize=8)
        for ax in axes[i]:
            ax.axis("off")
    if path is not None:
        FigureCanvasAgg(fig)
        fig.savefig(Path(path), dpi=120)
    return fig
