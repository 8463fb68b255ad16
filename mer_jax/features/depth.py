"""Depth Anything V2 (Yang et al., "Depth Anything V2", NeurIPS 2024) in Flax NNX: the depth clip of MADV-Net.

MADV-Net (paper section 3, 3.1) feeds a "3D video", the per-pixel depth of every frame predicted by Depth
Anything (its ref. [36]), next to the texture clip. The paper names neither the version nor the size; we use V2 Small
(issue 9), the DINOv2 ViT-S/14 encoder with a DPT decoder, built as transformers builds
`DepthAnythingForDepthEstimation` (models/depth_anything, dinov2) so that the public checkpoint
depth-anything/Depth-Anything-V2-Small-hf loads one to one (mer_jax/convert/depth_anything_weights.py). NHWC,
float32.

    pixels [B, H, W, 3], ImageNet-normalised RGB, H and W multiples of the patch size p (14)
    backbone (DINOv2): p x p / p patch convolution -> [B, H/p * W/p, D] tokens; a class token in front;
      + position embeddings of the pretraining grid (37 x 37 for 518 / 14, plus the class token's), the grid
        resized bicubically (A = -0.75, align_corners=False, border clamped: torch's interpolate) to
        H/p x W/p when it differs; `num_layers` pre-norm blocks
        x += ls1 * attn(LN(x));  x += ls2 * MLP(LN(x))   (LayerScale ls, MLP D -> 4D -> D with exact GELU)
      the outputs of blocks `out_indices` (1-based; V2 Small: 3, 6, 9, 12) through the final LayerNorm,
      class token dropped, as [B, H/p, W/p, D] maps
    neck (DPT): reassemble map i: 1x1 conv to neck_hidden_sizes[i], then resize by reassemble_factors[i]:
      a transposed conv (kernel = stride = factor) for factor > 1, identity for 1, a 3x3 conv with stride
      1 / factor (padding 1) for factor < 1; then a 3x3 conv (no bias) to `fusion_hidden_size` F
      fusion from the coarsest map up: y = RCU2(y + RCU1(map)) (the coarsest: y = RCU2(map)), resized
      bilinearly (align_corners=True) to the next map's size (the last one: x2), then a 1x1 conv;
      RCU(x) = x + conv3x3(ReLU(conv3x3(ReLU(x))))
    head: 3x3 conv F -> F/2, bilinear (align_corners=True) to H x W, 3x3 conv -> head_hidden_size, ReLU,
      1x1 conv -> 1, ReLU   -> relative depth [B, H, W]
The output is Depth Anything's relative depth: an affine-invariant inverse depth (disparity), larger for
nearer points, with no unit; it is not the metric "distance of scene points from the camera" of the paper's
section 3.

Differences from transformers, none of which changes the output: the mask token of DINOv2's masked-image
pretraining and the first fusion block's unused `residual_layer1` are not built (the converter accepts and
skips them); the position grid is resized only when it differs (transformers also skips it for square inputs
of the pretraining grid, and a same-size bicubic resize is the identity). The original Depth-Anything-V2 code
resizes the grid with scale factors (M + 0.1) / M instead of the target size; we follow transformers, whose
conversion the -hf checkpoint is.

Parameters of V2 Small: 24,785,089 in the -hf checkpoint (transformers' count, its config: image_size 518,
hidden 384, 6 heads, out_indices [3, 6, 9, 12], neck [48, 96, 192, 384], fusion 64, head 32); ours 384 + 73,856
fewer (`UNUSED_CHECKPOINT_PARAMS`), 24,710,849. Depth Anything V2 publishes 24.8M for V2 Small.
Initialisation (only for tests and training from scratch; the network is meant to be loaded): weights as
transformers' `_init_weights` (truncated normal std 0.02 in the backbone, normal std 0.02 in neck and head,
zero biases, LayerNorm 1 / 0, LayerScale 1).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mer_jax.features.normalise import IMAGENET_MEAN, IMAGENET_STD, rescale, standardise

CHECKPOINT_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
CHECKPOINT_FILE = "model.safetensors"
SMALL_NUM_PARAMS = 24_785_089           # transformers' count of the -hf checkpoint (published: 24.8M)
# The checkpoint's unused tensors: mask token (1 x 384), first fusion block's residual_layer1 (2 x (64*64*9 + 64)).
UNUSED_CHECKPOINT_PARAMS = 384 + 73_856
CUBIC_A = -0.75                          # torch's bicubic interpolation coefficient
INPUT_SIZE = 518                         # the processor's size of the -hf checkpoint (37 patches of 14)


@dataclasses.dataclass(frozen=True)
class DepthAnythingSpec:
    """The sizes of the network (defaults: Depth-Anything-V2-Small-hf's config.json)."""
    patch_size: int = 14
    hidden_size: int = 384
    num_layers: int = 12
    num_heads: int = 6
    mlp_ratio: int = 4
    layer_norm_eps: float = 1e-6                     # DINOv2's (transformers' Dinov2Config default)
    position_grid: int = 37                          # image_size 518 / patch 14
    out_indices: tuple[int, ...] = (3, 6, 9, 12)
    neck_hidden_sizes: tuple[int, ...] = (48, 96, 192, 384)
    reassemble_factors: tuple[float, ...] = (4, 2, 1, 0.5)
    fusion_hidden_size: int = 64
    head_hidden_size: int = 32

    def __post_init__(self):
        for name in ("out_indices", "neck_hidden_sizes", "reassemble_factors"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.hidden_size % self.num_heads:
            raise ValueError(f"Depth Anything hidden_size {self.hidden_size} must be a multiple of num_heads "
                             f"{self.num_heads}")
        if not len(self.out_indices) == len(self.neck_hidden_sizes) == len(self.reassemble_factors):
            raise ValueError(f"Depth Anything out_indices {self.out_indices}, neck_hidden_sizes "
                             f"{self.neck_hidden_sizes} and reassemble_factors {self.reassemble_factors} must have "
                             "one entry per neck level")
        if list(self.out_indices) != sorted(set(self.out_indices)) or not all(
                1 <= index <= self.num_layers for index in self.out_indices):
            raise ValueError(f"Depth Anything out_indices {self.out_indices} must increase strictly within "
                             f"1..num_layers ({self.num_layers})")
        for factor in self.reassemble_factors:
            if not (factor >= 1 and factor == int(factor)) and not (0 < factor < 1 and (1 / factor) == int(1 / factor)):
                raise ValueError(f"Depth Anything reassemble factor {factor} must be a positive integer or 1 / an "
                                 f"integer, got {self.reassemble_factors}")


SMALL = DepthAnythingSpec()

_BACKBONE_INIT = nnx.initializers.truncated_normal(0.02)
_NECK_INIT = nnx.initializers.normal(0.02)
_HIGHEST = jax.lax.Precision.HIGHEST


# ---------------------------------------------------------------------------------------------- resampling
def _cubic(x: float) -> float:
    """torch's cubic convolution kernel (A = -0.75) at distance |x| < 2."""
    x = abs(x)
    if x <= 1:
        return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1
    return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A


@functools.cache
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of torch's bicubic interpolate(align_corners=False) along one axis: source
    (i + 0.5) * in / out - 0.5, taps at floor - 1 .. floor + 2 clamped to the border."""
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        source = (i + 0.5) * in_size / out_size - 0.5
        base = math.floor(source)
        t = source - base
        for k, weight in enumerate((_cubic(t + 1), _cubic(t), _cubic(1 - t), _cubic(2 - t))):
            matrix[i, min(max(base - 1 + k, 0), in_size - 1)] += weight
    return matrix.astype(np.float32)


@functools.cache
def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of torch's bilinear interpolate(align_corners=True) along one axis: source
    i * (in - 1) / (out - 1) (0 when out = 1)."""
    matrix = np.zeros((out_size, in_size))
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    for i in range(out_size):
        source = i * scale
        low = min(int(source), in_size - 1)
        high = min(low + 1, in_size - 1)
        matrix[i, low] += 1 - (source - low)
        matrix[i, high] += source - low
    return matrix.astype(np.float32)


def resize_separable(x: jax.Array, rows: np.ndarray, cols: np.ndarray) -> jax.Array:
    """[B, H, W, C] -> [B, H', W', C] with per-axis weights rows [H', H] and cols [W', W]."""
    return jnp.einsum("yh,bhwc,xw->byxc", rows, x, cols, precision=_HIGHEST)


def bilinear_align_corners(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """torch's interpolate(x, size, mode="bilinear", align_corners=True) on [B, H, W, C]."""
    return resize_separable(x, bilinear_matrix(x.shape[1], size[0]), bilinear_matrix(x.shape[2], size[1]))


# ---------------------------------------------------------------------------------------------- backbone
def _linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(in_features, out_features, kernel_init=_BACKBONE_INIT, rngs=rngs)


def _layer_norm(spec: DepthAnythingSpec, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """torch's LayerNorm: two-pass variance."""
    return nnx.LayerNorm(spec.hidden_size, epsilon=spec.layer_norm_eps, use_fast_variance=False, rngs=rngs)


class Embeddings(nnx.Module):
    """Patch embedding, class token and (resized) position embeddings: [B, H, W, 3] -> [B, 1 + N, D]."""

    def __init__(self, spec: DepthAnythingSpec, *, rngs: nnx.Rngs):
        dim, grid = spec.hidden_size, spec.position_grid
        self.patch_size = spec.patch_size
        self.position_grid = grid
        self.patch_embeddings = nnx.Conv(3, dim, (spec.patch_size,) * 2, strides=spec.patch_size,
                                         padding="VALID", kernel_init=_BACKBONE_INIT, rngs=rngs)
        self.cls_token = nnx.Param(_BACKBONE_INIT(rngs.params(), (1, 1, dim)))
        self.position_embeddings = nnx.Param(_BACKBONE_INIT(rngs.params(), (1, grid * grid + 1, dim)))

    def positions(self, grid_h: int, grid_w: int) -> jax.Array:
        """[1, 1 + grid_h * grid_w, D]: the class token's embedding and the patch grid's, resized to the input."""
        table = self.position_embeddings[...]
        if (grid_h, grid_w) == (self.position_grid,) * 2:
            return table
        grid = table[:, 1:].reshape(1, self.position_grid, self.position_grid, -1)
        grid = resize_separable(grid, bicubic_matrix(self.position_grid, grid_h),
                                bicubic_matrix(self.position_grid, grid_w))
        return jnp.concatenate([table[:, :1], grid.reshape(1, grid_h * grid_w, -1)], axis=1)

    def __call__(self, pixels: jax.Array) -> jax.Array:
        patches = self.patch_embeddings(pixels)
        batch, grid_h, grid_w, dim = patches.shape
        cls = jnp.broadcast_to(self.cls_token[...], (batch, 1, dim))
        tokens = jnp.concatenate([cls, patches.reshape(batch, grid_h * grid_w, dim)], axis=1)
        return tokens + self.positions(grid_h, grid_w)


class Block(nnx.Module):
    """DINOv2 block (transformers' Dinov2Layer): x + ls1 * attn(LN(x)), then x + ls2 * MLP(LN(x))."""

    def __init__(self, spec: DepthAnythingSpec, *, rngs: nnx.Rngs):
        dim = spec.hidden_size
        self.num_heads = spec.num_heads
        self.norm1 = _layer_norm(spec, rngs)
        self.query = _linear(dim, dim, rngs=rngs)
        self.key = _linear(dim, dim, rngs=rngs)
        self.value = _linear(dim, dim, rngs=rngs)
        self.attention_output = _linear(dim, dim, rngs=rngs)
        self.layer_scale1 = nnx.Param(jnp.ones((dim,)))
        self.norm2 = _layer_norm(spec, rngs)
        self.fc1 = _linear(dim, spec.mlp_ratio * dim, rngs=rngs)
        self.fc2 = _linear(spec.mlp_ratio * dim, dim, rngs=rngs)
        self.layer_scale2 = nnx.Param(jnp.ones((dim,)))

    def attention(self, x: jax.Array) -> jax.Array:
        batch, length, dim = x.shape
        heads = lambda y: y.reshape(batch, length, self.num_heads, dim // self.num_heads)
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) * (dim // self.num_heads) ** -0.5, axis=-1)
        return self.attention_output(jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, dim))

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.layer_scale1[...] * self.attention(self.norm1(x))
        return x + self.layer_scale2[...] * self.fc2(jax.nn.gelu(self.fc1(self.norm2(x)), approximate=False))


class Backbone(nnx.Module):
    """DINOv2 ViT: [B, H, W, 3] -> the LayerNorm'd outputs of blocks `out_indices`, each [B, H/p, W/p, D]."""

    def __init__(self, spec: DepthAnythingSpec, *, rngs: nnx.Rngs):
        self.out_indices = spec.out_indices
        self.embeddings = Embeddings(spec, rngs=rngs)
        self.layers = nnx.List([Block(spec, rngs=rngs) for _ in range(spec.num_layers)])
        self.layernorm = _layer_norm(spec, rngs)

    def __call__(self, pixels: jax.Array) -> list[jax.Array]:
        batch, height, width, _ = pixels.shape
        grid = (height // self.embeddings.patch_size, width // self.embeddings.patch_size)
        x = self.embeddings(pixels)
        maps = []
        for index, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if index in self.out_indices:
                maps.append(self.layernorm(x)[:, 1:].reshape(batch, *grid, -1))
        return maps


# ---------------------------------------------------------------------------------------------- DPT neck, head
def _conv(in_features: int, out_features: int, kernel: int, *, stride: int = 1, bias: bool = True,
          rngs: nnx.Rngs) -> nnx.Conv:
    """Conv2d with torch's padding (kernel - 1) // 2 per side."""
    pad = (kernel - 1) // 2
    return nnx.Conv(in_features, out_features, (kernel, kernel), strides=stride, padding=((pad, pad), (pad, pad)),
                    use_bias=bias, kernel_init=_NECK_INIT, rngs=rngs)


class Reassemble(nnx.Module):
    """One DPT reassemble level: 1x1 conv to `channels`, then resize by `factor` (module docstring)."""

    def __init__(self, in_features: int, channels: int, factor: float, *, rngs: nnx.Rngs):
        self.projection = _conv(in_features, channels, 1, rngs=rngs)
        if factor > 1:
            self.resize = nnx.ConvTranspose(channels, channels, (int(factor),) * 2, strides=int(factor),
                                            padding="VALID", kernel_init=_NECK_INIT, rngs=rngs)
        elif factor < 1:
            self.resize = _conv(channels, channels, 3, stride=round(1 / factor), rngs=rngs)
        else:
            self.resize = None

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.projection(x)
        return x if self.resize is None else self.resize(x)


class ResidualUnit(nnx.Module):
    """Pre-activation residual conv unit: x + conv2(ReLU(conv1(ReLU(x))))."""

    def __init__(self, features: int, *, rngs: nnx.Rngs):
        self.convolution1 = _conv(features, features, 3, rngs=rngs)
        self.convolution2 = _conv(features, features, 3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.convolution2(jax.nn.relu(self.convolution1(jax.nn.relu(x))))


class Fusion(nnx.Module):
    """One DPT fusion block: y = RCU2(y + RCU1(skip)) (`skip` None: y = RCU2(y)), bilinear (align_corners)
    to `size` (None: x2), 1x1 conv. The first block (coarsest level) has no skip and no RCU1."""

    def __init__(self, features: int, *, has_skip: bool, rngs: nnx.Rngs):
        self.residual_layer1 = ResidualUnit(features, rngs=rngs) if has_skip else None
        self.residual_layer2 = ResidualUnit(features, rngs=rngs)
        self.projection = _conv(features, features, 1, rngs=rngs)

    def __call__(self, x: jax.Array, skip: jax.Array | None, size: tuple[int, int] | None) -> jax.Array:
        if skip is not None:
            x = x + self.residual_layer1(skip)
        x = self.residual_layer2(x)
        x = bilinear_align_corners(x, size or (2 * x.shape[1], 2 * x.shape[2]))
        return self.projection(x)


class Neck(nnx.Module):
    """DPT neck: reassemble each backbone map, 3x3 conv to F, fuse from the coarsest up; the finest fusion
    output [B, 2 * h0, 2 * w0, F] (h0 x w0: the first level's map)."""

    def __init__(self, spec: DepthAnythingSpec, *, rngs: nnx.Rngs):
        features = spec.fusion_hidden_size
        self.reassemble = nnx.List([Reassemble(spec.hidden_size, channels, factor, rngs=rngs)
                                    for channels, factor in zip(spec.neck_hidden_sizes, spec.reassemble_factors)])
        self.convs = nnx.List([_conv(channels, features, 3, bias=False, rngs=rngs)
                               for channels in spec.neck_hidden_sizes])
        self.fusion = nnx.List([Fusion(features, has_skip=index > 0, rngs=rngs)
                                for index in range(len(spec.neck_hidden_sizes))])

    def __call__(self, maps: list[jax.Array]) -> jax.Array:
        levels = [conv(reassemble(x)) for x, reassemble, conv in zip(maps, self.reassemble, self.convs)][::-1]
        y = None
        for index, (level, fusion) in enumerate(zip(levels, self.fusion)):
            size = levels[index + 1].shape[1:3] if index + 1 < len(levels) else None
            y = fusion(level, None, size) if y is None else fusion(y, level, size)
        return y


class Head(nnx.Module):
    """Relative depth head: 3x3 conv F -> F/2, bilinear (align_corners) to the input size, 3x3 conv,
    ReLU, 1x1 conv -> 1, ReLU."""

    def __init__(self, spec: DepthAnythingSpec, *, rngs: nnx.Rngs):
        features = spec.fusion_hidden_size
        self.conv1 = _conv(features, features // 2, 3, rngs=rngs)
        self.conv2 = _conv(features // 2, spec.head_hidden_size, 3, rngs=rngs)
        self.conv3 = _conv(spec.head_hidden_size, 1, 1, rngs=rngs)

    def __call__(self, x: jax.Array, size: tuple[int, int]) -> jax.Array:
        x = bilinear_align_corners(self.conv1(x), size)
        x = self.conv3(jax.nn.relu(self.conv2(x)))
        return jax.nn.relu(x)[..., 0]


class DepthAnything(nnx.Module):
    """Depth Anything (V2 Small with the default `spec`; module docstring): ImageNet-normalised RGB
    [B, H, W, 3] (H, W multiples of the patch size) -> relative depth [B, H, W]."""

    def __init__(self, spec: DepthAnythingSpec = SMALL, *, rngs: nnx.Rngs):
        self.spec = spec
        self.backbone = Backbone(spec, rngs=rngs)
        self.neck = Neck(spec, rngs=rngs)
        self.head = Head(spec, rngs=rngs)

    def __call__(self, pixels: jax.Array) -> jax.Array:
        patch = self.spec.patch_size
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"Depth Anything takes RGB images [B, H, W, 3], got shape {pixels.shape}")
        if pixels.shape[1] % patch or pixels.shape[2] % patch or min(pixels.shape[1:3]) < patch:
            raise ValueError(f"Depth Anything image height and width must be positive multiples of the patch "
                             f"size {patch}, got {pixels.shape[1]} x {pixels.shape[2]}")
        return self.head(self.neck(self.backbone(pixels)), pixels.shape[1:3])


# ---------------------------------------------------------------------------------------------- frames -> depth
def network_size(height: int, width: int, size: int = INPUT_SIZE, multiple: int = 14) -> tuple[int, int]:
    """The size a frame is resized to before the network, as the -hf checkpoint's processor computes it
    (transformers' DPTImageProcessor: size size x size, keep_aspect_ratio, ensure_multiple_of 14): both
    sides scaled by whichever of size / height, size / width is closer to 1, each rounded to the nearest
    multiple of `multiple` (at least one multiple). Square frames become size x size."""
    scale_h, scale_w = size / height, size / width
    scale = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h
    return tuple(max(multiple, round(side * scale / multiple) * multiple) for side in (height, width))


@functools.partial(nnx.jit, static_argnames=("size",))
def _depth_batch(model: DepthAnything, frames: jax.Array, size: int) -> jax.Array:
    height, width = frames.shape[1:3]
    net_h, net_w = network_size(height, width, size, model.spec.patch_size)
    x = rescale(frames) if frames.dtype == jnp.uint8 else frames.astype(jnp.float32)
    x = jax.image.resize(x, (x.shape[0], net_h, net_w, 3), "cubic")
    depth = model(standardise(x, IMAGENET_MEAN, IMAGENET_STD))
    return jax.image.resize(depth[..., None], (x.shape[0], height, width, 1), "linear")


def depth_frames(model: DepthAnything, frames, size: int = INPUT_SIZE, batch_size: int | None = 8) -> jax.Array:
    """Relative depth [N, H, W, 1] float32 of frames [N, H, W, 3] (RGB, uint8 0..255 or float in [0, 1]).

    Preprocessing as the -hf checkpoint's image processor: uint8 scaled by 1 / 255; resized to
    `network_size(H, W, size)` (multiples of the patch size; `size` 518 as upstream: 37 x 37 patches, the
    pretraining grid) with jax.image.resize "cubic" (Keys cubic, a = -0.5, antialiased when shrinking: what
    PIL's BICUBIC, which the processor uses, computes); then normalised per channel with ImageNet's mean
    (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), as DINOv2 was trained. The depth is resized back
    to H x W with jax.image.resize "linear" (the original Depth-Anything-V2 `infer_image` resizes back
    bilinearly; bilinear never leaves the [min, max] of the network's output, so depth stays >= 0).
    One jitted program runs `batch_size` frames at a time (the last batch padded with blank frames, which
    change no other frame's depth), so clips of any length share one compilation per frame size and memory
    stays bounded; None runs all N at once (one compilation per N). Values are relative (larger = nearer),
    per frame up to an unknown scale and shift (module docstring)."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"depth_frames takes frames [N, H, W, 3], got shape {frames.shape}")
    if frames.dtype != np.uint8 and not np.issubdtype(frames.dtype, np.floating):
        raise ValueError(f"depth_frames takes uint8 (0..255) or float ([0, 1]) frames, got dtype {frames.dtype}")
    if size < model.spec.patch_size:
        raise ValueError(f"depth_frames size must be at least the patch size {model.spec.patch_size}, got {size}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"depth_frames batch_size must be positive or None, got {batch_size}")
    frames = jnp.asarray(frames)
    count = frames.shape[0]
    if batch_size is None or count == 0:
        return _depth_batch(model, frames, size)
    padded = jnp.concatenate([frames, jnp.zeros((-count % batch_size, *frames.shape[1:]), frames.dtype)])
    return jnp.concatenate([_depth_batch(model, padded[start:start + batch_size], size)
                            for start in range(0, len(padded), batch_size)])[:count]


def load_depth_anything(path, spec: DepthAnythingSpec = SMALL) -> DepthAnything:
    """Depth Anything from the user's download of the transformers checkpoint: `path` is the model.safetensors
    of depth-anything/Depth-Anything-V2-Small-hf (or the folder holding it), filled into an abstract
    (nnx.eval_shape) build of `spec` by mer_jax/convert/depth_anything_weights.py."""
    how = (f"download {CHECKPOINT_FILE} of the Hugging Face repository {CHECKPOINT_REPO} "
           f"(https://huggingface.co/{CHECKPOINT_REPO}/resolve/main/{CHECKPOINT_FILE}, or `hf download "
           f"{CHECKPOINT_REPO} {CHECKPOINT_FILE} --local-dir <dir>`) and pass its path (or <dir>): "
           f"load_depth_anything('<dir>/{CHECKPOINT_FILE}'), in a MADV-Net run "
           f"--config.features.depth_weights=<dir>/{CHECKPOINT_FILE}")
    if path is None or str(path) == "":
        raise FileNotFoundError(f"no Depth Anything weights given: {how}")
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Depth Anything weights {path} not found: {how}")
    from mer_jax.convert.depth_anything_weights import load_transformers_depth_anything, read_safetensors
    try:
        state_dict = read_safetensors(path)
    except ValueError as error:
        raise ValueError(f"{error}: {how}") from error
    model = nnx.eval_shape(lambda: DepthAnything(spec, rngs=nnx.Rngs(0)))
    try:
        load_transformers_depth_anything(model, state_dict)
    except ValueError as error:
        raise ValueError(f"{path}: {error}. Expected the checkpoint of {CHECKPOINT_REPO}: {how}") from error
    return model
