"""RAFT optical flow (Teed and Deng, "RAFT: Recurrent All-Pairs Field Transforms", ECCV 2020) in Flax NNX.

Built as torchvision builds `raft_large` and `raft_small` (torchvision.models.optical_flow.raft), module
for module, so that their state_dicts load one to one (mer_jax/convert/raft_weights.py). NHWC, float32.

    image1, image2 [B, H, W, 3] in [-1, 1] (torchvision's OpticalFlow transform), H and W multiples of 8
    feature encoder on both images (one batch of 2B), instance norm        -> fmap1, fmap2 [B, H/8, W/8, D]
    correlation volume C[i, j, k, l] = <fmap1[i, j], fmap2[k, l]> / sqrt(D)                (paper 3.2)
    pyramid: C and its last two axes average-pooled 2x2 (stride 2, odd sides floored), 4 levels
    context encoder on image1 -> tanh of the first `hidden` channels = GRU state, ReLU of the rest = context
    coords0 = coords1 = pixel grid (x, y) at 1/8 resolution; then `num_updates` times (jax.lax.scan):
      lookup: at each level k, the (2r+1)^2 bilinear samples of the level-k map of every pixel around
        coords1 / 2^k at integer offsets (infinity-norm ball, torchvision's note on the paper's typo), zero
        outside the map; channels ordered level, x offset, y offset (torchvision's meshgrid "ij" of (dx, dy))
      motion encoder(flow = coords1 - coords0, correlation features)
      GRU(s) on [hidden, context, motion features]; delta flow = flow head(hidden); coords1 += delta flow
      (coords1 is not back-propagated through between updates, paper 3.3 / torchvision's detach)
    upsampling x8 (paper 3.3, appendix B): large: convex combination of the 3x3 neighbourhood of 8 x flow,
      weights = softmax over 9 of 0.25 x mask predictor(hidden) [.., 9, 8, 8]; small: 8 x bilinear
      interpolation with align_corners=True.
    output flow [B, H, W, 2]: (u, v) in pixels, x right, y down, carrying image1 onto image2.

Variants (torchvision's `raft_large` / `raft_small` arguments):
| part | large | small |
|---|---|---|
| feature encoder | residual blocks, widths (64, 64, 96, 128, 256), instance norm | bottleneck blocks, (32, 32, 64, 96, 128), instance norm |
| context encoder | residual blocks, (64, 64, 96, 128, 256), batch norm | bottleneck blocks, (32, 32, 64, 96, 160), no norm |
| correlation | 4 levels, radius 4 (324 channels) | 4 levels, radius 3 (196 channels) |
| motion encoder | corr 1x1 256, 3x3 192; flow 7x7 128, 3x3 64; out 3x3 126 + flow | corr 1x1 96; flow 7x7 64, 3x3 32; out 3x3 80 + flow |
| GRU | hidden 128, separable: (1, 5) then (5, 1) | hidden 96, one 3x3 |
| flow head | 3x3 256, 3x3 2 | 3x3 128, 3x3 2 |
| upsampling | mask predictor 3x3 256, 1x1 576, x 0.25; convex | bilinear |
| parameters (torchvision's weight metadata) | 5,257,536 | 990,162 |

Encoder blocks as torchvision's: every convolution has a bias (also before a norm), a residual block is
conv3x3(stride)-norm-ReLU, conv3x3-norm-ReLU, a bottleneck block 1x1 (C/4), 3x3 (C/4, stride), 1x1 (C),
each with norm and ReLU; the shortcut is conv1x1(stride) + norm when the block has stride 2, the identity
otherwise; ReLU after the sum. The stem is conv7x7/2-norm-ReLU, then 3 layers of 2 blocks (first strides
1, 2, 2), then a 1x1 convolution. Instance norm has no affine parameters and no running statistics
(torch's InstanceNorm2d defaults); batch norm uses its running statistics unless `train=True`.
Initialisation as torchvision's: encoder convolutions kaiming-normal (fan_out, ReLU gain), other
convolutions PyTorch's default U(+-1/sqrt(fan_in)), biases U(+-1/sqrt(fan_in)).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from mer_jax.features.network_checkpoint import load_network, save_network


@dataclasses.dataclass(frozen=True)
class RaftSpec:
    """The arguments torchvision's `raft_large` / `raft_small` pass to its `_raft` builder."""
    block: str                                   # "residual" | "bottleneck"
    feature_layers: tuple[int, ...]
    feature_norm: str | None                     # "instance" | "batch" | None
    context_layers: tuple[int, ...]
    context_norm: str | None
    corr_levels: int
    corr_radius: int
    motion_corr_layers: tuple[int, ...]
    motion_flow_layers: tuple[int, int]
    motion_out: int
    hidden: int
    gru_kernels: tuple[tuple[int, int], ...]
    flow_head_hidden: int
    convex_upsampling: bool


VARIANTS = {
    "large": RaftSpec(block="residual", feature_layers=(64, 64, 96, 128, 256), feature_norm="instance",
                      context_layers=(64, 64, 96, 128, 256), context_norm="batch", corr_levels=4, corr_radius=4,
                      motion_corr_layers=(256, 192), motion_flow_layers=(128, 64), motion_out=128, hidden=128,
                      gru_kernels=((1, 5), (5, 1)), flow_head_hidden=256, convex_upsampling=True),
    "small": RaftSpec(block="bottleneck", feature_layers=(32, 32, 64, 96, 128), feature_norm="instance",
                      context_layers=(32, 32, 64, 96, 160), context_norm=None, corr_levels=4, corr_radius=3,
                      motion_corr_layers=(96,), motion_flow_layers=(64, 32), motion_out=82, hidden=96,
                      gru_kernels=((3, 3),), flow_head_hidden=128, convex_upsampling=False),
}
# torchvision's Raft_Large_Weights / Raft_Small_Weights metadata "num_params".
TORCHVISION_NUM_PARAMS = {"large": 5_257_536, "small": 990_162}
MASK_MULTIPLIER = 0.25  # torchvision's MaskPredictor(multiplier=0.25): the original code's gradient down-weighting
UPSAMPLE = 8            # the encoders downsample by 8 (strides 2, 1, 2, 2)

_TORCH_DEFAULT = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
_KAIMING_FAN_OUT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(in_features: int, out_features: int, kernel: int | tuple[int, int], *, stride: int = 1,
          encoder: bool = False, rngs: nnx.Rngs) -> nnx.Conv:
    """Conv2d with bias and torch's "same" padding (k - 1) // 2 per side; kaiming-normal (fan_out) weights in
    the encoders, torch's default elsewhere; bias U(+-1/sqrt(fan_in)) (torch's default)."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    layer = nnx.Conv(in_features, out_features, (kh, kw), strides=stride,
                     padding=(((kh - 1) // 2,) * 2, ((kw - 1) // 2,) * 2),
                     kernel_init=_KAIMING_FAN_OUT if encoder else _TORCH_DEFAULT, rngs=rngs)
    bound = (kh * kw * in_features) ** -0.5
    layer.bias[...] = jax.random.uniform(rngs.params(), layer.bias.shape, minval=-bound, maxval=bound)
    return layer


def instance_norm(x: jax.Array, epsilon: float = 1e-5) -> jax.Array:
    """torch's InstanceNorm2d defaults: per sample and channel over H, W, biased variance, no affine."""
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = jnp.square(x - mean).mean(axis=(1, 2), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + epsilon)


class ConvNormAct(nnx.Module):
    """torchvision's Conv2dNormActivation as RAFT uses it: conv (with bias), optional norm, optional ReLU."""

    def __init__(self, in_features: int, out_features: int, kernel: int | tuple[int, int], *, stride: int = 1,
                 norm: str | None = None, relu: bool = True, encoder: bool = False, rngs: nnx.Rngs):
        if norm not in ("instance", "batch", None):
            raise ValueError(f"RAFT norm must be 'instance', 'batch' or None, got {norm!r}")
        self.conv = _conv(in_features, out_features, kernel, stride=stride, encoder=encoder, rngs=rngs)
        self.norm = norm
        self.bn = (nnx.BatchNorm(out_features, momentum=0.9, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
                   if norm == "batch" else None)
        self.relu = relu

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        x = self.conv(x)
        if self.norm == "instance":
            x = instance_norm(x)
        elif self.bn is not None:
            x = self.bn(x, use_running_average=not train)
        return jax.nn.relu(x) if self.relu else x


class ResidualBlock(nnx.Module):
    """torchvision's RAFT ResidualBlock: two conv3x3-norm-ReLU, a conv1x1-norm shortcut when strided, ReLU."""

    def __init__(self, in_features: int, out_features: int, *, norm: str | None, stride: int, rngs: nnx.Rngs):
        unit = dict(norm=norm, encoder=True, rngs=rngs)
        self.convnormrelu1 = ConvNormAct(in_features, out_features, 3, stride=stride, **unit)
        self.convnormrelu2 = ConvNormAct(out_features, out_features, 3, **unit)
        self.downsample = (ConvNormAct(in_features, out_features, 1, stride=stride, relu=False, **unit)
                           if stride != 1 else None)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        y = self.convnormrelu2(self.convnormrelu1(x, train=train), train=train)
        if self.downsample is not None:
            x = self.downsample(x, train=train)
        return jax.nn.relu(x + y)


class BottleneckBlock(nnx.Module):
    """torchvision's RAFT BottleneckBlock: 1x1 (C/4), 3x3 (C/4, stride), 1x1 (C), each conv-norm-ReLU; a
    conv1x1-norm shortcut when strided; ReLU after the sum."""

    def __init__(self, in_features: int, out_features: int, *, norm: str | None, stride: int, rngs: nnx.Rngs):
        unit = dict(norm=norm, encoder=True, rngs=rngs)
        inner = out_features // 4
        self.convnormrelu1 = ConvNormAct(in_features, inner, 1, **unit)
        self.convnormrelu2 = ConvNormAct(inner, inner, 3, stride=stride, **unit)
        self.convnormrelu3 = ConvNormAct(inner, out_features, 1, **unit)
        self.downsample = (ConvNormAct(in_features, out_features, 1, stride=stride, relu=False, **unit)
                           if stride != 1 else None)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        y = self.convnormrelu1(x, train=train)
        y = self.convnormrelu3(self.convnormrelu2(y, train=train), train=train)
        if self.downsample is not None:
            x = self.downsample(x, train=train)
        return jax.nn.relu(x + y)


class FeatureEncoder(nnx.Module):
    """Feature / context encoder (paper 3.1): conv7x7/2-norm-ReLU, 3 layers of 2 blocks (first strides 1, 2,
    2), conv1x1; [B, H, W, 3] -> [B, H/8, W/8, layers[4]]."""

    def __init__(self, layers: tuple[int, ...], *, block: str, norm: str | None, rngs: nnx.Rngs):
        if len(layers) != 5:
            raise ValueError(f"RAFT encoder layers must have 5 widths, got {layers}")
        if block not in ("residual", "bottleneck"):
            raise ValueError(f"RAFT encoder block must be 'residual' or 'bottleneck', got {block!r}")
        block_cls = ResidualBlock if block == "residual" else BottleneckBlock
        self.convnormrelu = ConvNormAct(3, layers[0], 7, stride=2, norm=norm, encoder=True, rngs=rngs)
        stages = []
        for in_features, out_features, stride in zip(layers[:3], layers[1:4], (1, 2, 2)):
            stages.append(nnx.List([block_cls(in_features, out_features, norm=norm, stride=stride, rngs=rngs),
                                    block_cls(out_features, out_features, norm=norm, stride=1, rngs=rngs)]))
        self.layer1, self.layer2, self.layer3 = stages
        self.conv = _conv(layers[3], layers[4], 1, encoder=True, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        x = self.convnormrelu(x, train=train)
        for stage in (self.layer1, self.layer2, self.layer3):
            for block in stage:
                x = block(x, train=train)
        return self.conv(x)


class MotionEncoder(nnx.Module):
    """Motion encoder (paper appendix A): ReLU convolutions of the correlation features and of the flow,
    concatenated, one more conv, then the flow itself appended; -> [.., out_channels]."""

    def __init__(self, corr_channels: int, corr_layers: tuple[int, ...], flow_layers: tuple[int, int],
                 out_channels: int, *, rngs: nnx.Rngs):
        if len(corr_layers) not in (1, 2):
            raise ValueError(f"RAFT motion encoder corr_layers must have 1 or 2 widths, got {corr_layers}")
        self.convcorr1 = ConvNormAct(corr_channels, corr_layers[0], 1, rngs=rngs)
        self.convcorr2 = ConvNormAct(corr_layers[0], corr_layers[1], 3, rngs=rngs) if len(corr_layers) == 2 else None
        self.convflow1 = ConvNormAct(2, flow_layers[0], 7, rngs=rngs)
        self.convflow2 = ConvNormAct(flow_layers[0], flow_layers[1], 3, rngs=rngs)
        self.conv = ConvNormAct(corr_layers[-1] + flow_layers[1], out_channels - 2, 3, rngs=rngs)

    def __call__(self, flow: jax.Array, corr: jax.Array) -> jax.Array:
        corr = self.convcorr1(corr)
        if self.convcorr2 is not None:
            corr = self.convcorr2(corr)
        motion = self.convflow2(self.convflow1(flow))
        return jnp.concatenate([self.conv(jnp.concatenate([corr, motion], -1)), flow], -1)


class ConvGRU(nnx.Module):
    """Convolutional GRU (paper 3.3): z, r = sigmoid(conv([h, x])), q = tanh(conv([r h, x])),
    h <- (1 - z) h + z q."""

    def __init__(self, input_size: int, hidden_size: int, kernel: tuple[int, int], *, rngs: nnx.Rngs):
        self.convz = _conv(hidden_size + input_size, hidden_size, kernel, rngs=rngs)
        self.convr = _conv(hidden_size + input_size, hidden_size, kernel, rngs=rngs)
        self.convq = _conv(hidden_size + input_size, hidden_size, kernel, rngs=rngs)

    def __call__(self, h: jax.Array, x: jax.Array) -> jax.Array:
        hx = jnp.concatenate([h, x], -1)
        z = jax.nn.sigmoid(self.convz(hx))
        r = jax.nn.sigmoid(self.convr(hx))
        q = jnp.tanh(self.convq(jnp.concatenate([r * h, x], -1)))
        return (1 - z) * h + z * q


class FlowHead(nnx.Module):
    """conv3x3-ReLU-conv3x3 -> delta flow [.., 2]."""

    def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
        self.conv1 = _conv(in_features, hidden, 3, rngs=rngs)
        self.conv2 = _conv(hidden, 2, 3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv2(jax.nn.relu(self.conv1(x)))


class UpdateBlock(nnx.Module):
    """One update (paper 3.3): motion features, GRU(s) on [context, motion], flow head."""

    def __init__(self, spec: RaftSpec, *, rngs: nnx.Rngs):
        corr_channels = spec.corr_levels * (2 * spec.corr_radius + 1) ** 2
        self.motion_encoder = MotionEncoder(corr_channels, spec.motion_corr_layers, spec.motion_flow_layers,
                                            spec.motion_out, rngs=rngs)
        gru_input = spec.motion_out + spec.context_layers[-1] - spec.hidden
        self.recurrent_block = nnx.List([ConvGRU(gru_input, spec.hidden, kernel, rngs=rngs)
                                         for kernel in spec.gru_kernels])
        self.flow_head = FlowHead(spec.hidden, spec.flow_head_hidden, rngs=rngs)

    def __call__(self, hidden: jax.Array, context: jax.Array, corr: jax.Array,
                 flow: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.concatenate([context, self.motion_encoder(flow, corr)], -1)
        for gru in self.recurrent_block:
            hidden = gru(hidden, x)
        return hidden, self.flow_head(hidden)


class MaskPredictor(nnx.Module):
    """Convex-upsampling weights (paper 3.3, appendix B): 0.25 x conv1x1(ReLU(conv3x3(hidden))), 8*8*9."""

    def __init__(self, in_features: int, hidden: int = 256, *, rngs: nnx.Rngs):
        self.convrelu = ConvNormAct(in_features, hidden, 3, rngs=rngs)
        self.conv = _conv(hidden, UPSAMPLE * UPSAMPLE * 9, 1, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return MASK_MULTIPLIER * self.conv(self.convrelu(hidden))


def correlation_pyramid(fmap1: jax.Array, fmap2: jax.Array, num_levels: int) -> list[jax.Array]:
    """All-pairs correlation (paper 3.2) [B, h, w, h, w] and its 2x2 average pools over the last two axes
    (sides floored as torch's avg_pool2d), finest first. fmap1, fmap2: [B, h, w, D]."""
    if fmap1.shape != fmap2.shape:
        raise ValueError(f"RAFT feature maps must have the same shape, got {fmap1.shape} and {fmap2.shape}")
    corr = jnp.einsum("bijd,bkld->bijkl", fmap1, fmap2) / jnp.sqrt(jnp.float32(fmap1.shape[-1]))
    pyramid = [corr]
    for _ in range(num_levels - 1):
        b, h, w, h2, w2 = corr.shape
        corr = corr[..., :h2 // 2 * 2, :w2 // 2 * 2].reshape(b, h, w, h2 // 2, 2, w2 // 2, 2).mean(axis=(4, 6))
        pyramid.append(corr)
    return pyramid


def _hat_weights(positions: jax.Array, size: int) -> jax.Array:
    """Linear-interpolation weights [..., size] of sampling 1-D grid 0..size-1 at `positions` [...]: 1 - |p - g|
    where positive, so a position outside [-1, size] gets none (grid_sample's zero padding, per corner)."""
    return jax.nn.relu(1.0 - jnp.abs(positions[..., None] - jnp.arange(size, dtype=positions.dtype)))


def lookup(pyramid: list[jax.Array], coords: jax.Array, radius: int) -> jax.Array:
    """Correlation features [B, h, w, levels * (2r+1)^2] around `coords` [B, h, w, 2] (x, y; level-0 pixels).

    Level k samples its map at coords / 2^k + (dx, dy), dx, dy in -r..r, bilinearly with zeros outside, as
    torchvision's grid_sample(align_corners=True) on pixel coordinates; channel index = level * (2r+1)^2 +
    (dx + r) * (2r+1) + (dy + r). Bilinear sampling is separable, so each window is W_y C W_x^T with the
    [2r+1, side] interpolation matrices of the window's rows and columns (matrix products, no gathers).
    """
    offsets = jnp.arange(-radius, radius + 1, dtype=coords.dtype)
    features = []
    for level, corr in enumerate(pyramid):
        centre = coords / 2 ** level
        wx = _hat_weights(centre[..., 0:1] + offsets, corr.shape[4])  # [B, h, w, 2r+1 (dx), W_k]
        wy = _hat_weights(centre[..., 1:2] + offsets, corr.shape[3])  # [B, h, w, 2r+1 (dy), H_k]
        rows = jnp.einsum("bijYX,bijsX->bijYs", corr, wx)
        window = jnp.einsum("bijYs,bijtY->bijst", rows, wy)             # [B, h, w, dx, dy]
        features.append(window.reshape(window.shape[:3] + (-1,)))
    return jnp.concatenate(features, -1)


def convex_upsample(flow: jax.Array, mask: jax.Array) -> jax.Array:
    """Flow [B, h, w, 2] -> [B, 8h, 8w, 2] (paper 3.3, appendix B): output pixel (8i + a, 8j + b) is the
    convex combination, weights softmax over k of mask[i, j, k, a, b] (mask [B, h, w, 9 * 8 * 8], index
    k * 64 + a * 8 + b), of 8 x flow at the 3x3 neighbours k = 3 dy + dx of (i, j), zero outside."""
    b, h, w, _ = flow.shape
    weights = jax.nn.softmax(mask.reshape(b, h, w, 9, UPSAMPLE, UPSAMPLE), axis=3)
    padded = jnp.pad(UPSAMPLE * flow, ((0, 0), (1, 1), (1, 1), (0, 0)))
    neighbours = jnp.stack([padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], 3)
    up = jnp.einsum("bijkrs,bijkc->birjsc", weights, neighbours)  # r, s: row and column within the 8x8 cell
    return up.reshape(b, UPSAMPLE * h, UPSAMPLE * w, 2)


def bilinear_upsample(flow: jax.Array) -> jax.Array:
    """8 x flow [B, h, w, 2] resized to [B, 8h, 8w, 2] bilinearly with align_corners=True (torchvision's
    upsample_flow without a mask)."""
    def matrix(size: int) -> jax.Array:
        positions = jnp.arange(UPSAMPLE * size, dtype=jnp.float32) * ((size - 1) / (UPSAMPLE * size - 1))
        return _hat_weights(positions, size)
    _, h, w, _ = flow.shape
    return UPSAMPLE * jnp.einsum("Yi,bijc,Xj->bYXc", matrix(h), flow, matrix(w))


def coords_grid(batch: int, height: int, width: int) -> jax.Array:
    """Pixel coordinates [B, H, W, 2] as (x, y)."""
    ys, xs = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32),
                          indexing="ij")
    return jnp.broadcast_to(jnp.stack([xs, ys], -1), (batch, height, width, 2))


class RAFT(nnx.Module):
    """RAFT, `variant` "large" or "small" (torchvision's raft_large / raft_small; module docstring)."""

    def __init__(self, variant: str = "large", *, rngs: nnx.Rngs):
        if variant not in VARIANTS:
            raise ValueError(f"RAFT variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        spec = VARIANTS[variant]
        if spec.context_layers[-1] <= spec.hidden:
            raise ValueError(f"RAFT context encoder width {spec.context_layers[-1]} must exceed the GRU hidden "
                             f"size {spec.hidden}")
        self.variant = variant
        self.spec = spec
        self.feature_encoder = FeatureEncoder(spec.feature_layers, block=spec.block, norm=spec.feature_norm,
                                              rngs=rngs)
        self.context_encoder = FeatureEncoder(spec.context_layers, block=spec.block, norm=spec.context_norm,
                                              rngs=rngs)
        self.update_block = UpdateBlock(spec, rngs=rngs)
        self.mask_predictor = MaskPredictor(spec.hidden, rngs=rngs) if spec.convex_upsampling else None

    def encode(self, image1: jax.Array, image2: jax.Array, *, train: bool = False):
        """(correlation pyramid, initial hidden state, context, coords0) of a pair of [B, H, W, 3] images."""
        if image1.shape != image2.shape or image1.ndim != 4 or image1.shape[-1] != 3:
            raise ValueError(f"RAFT takes two [B, H, W, 3] images of one shape, got {image1.shape} and {image2.shape}")
        batch, height, width, _ = image1.shape
        smallest = UPSAMPLE * 2 ** (self.spec.corr_levels - 1)
        if height % UPSAMPLE or width % UPSAMPLE or height < smallest or width < smallest:
            raise ValueError(f"RAFT image height and width must be multiples of {UPSAMPLE} and at least "
                             f"{smallest} (one pixel at the coarsest of {self.spec.corr_levels} correlation "
                             f"levels), got {height} x {width}")
        fmaps = self.feature_encoder(jnp.concatenate([image1, image2], 0), train=train)
        pyramid = correlation_pyramid(fmaps[:batch], fmaps[batch:], self.spec.corr_levels)
        context = self.context_encoder(image1, train=train)
        hidden = jnp.tanh(context[..., :self.spec.hidden])
        context = jax.nn.relu(context[..., self.spec.hidden:])
        return pyramid, hidden, context, coords_grid(batch, height // UPSAMPLE, width // UPSAMPLE)

    def update(self, hidden: jax.Array, coords1: jax.Array, coords0: jax.Array, context: jax.Array,
               pyramid: list[jax.Array]) -> tuple[jax.Array, jax.Array]:
        """One recurrent update: (hidden, coords1) -> (new hidden, coords1 + delta flow)."""
        coords1 = jax.lax.stop_gradient(coords1)
        corr = lookup(pyramid, coords1, self.spec.corr_radius)
        hidden, delta = self.update_block(hidden, context, corr, coords1 - coords0)
        return hidden, coords1 + delta

    def upsample(self, hidden: jax.Array, flow: jax.Array) -> jax.Array:
        """Flow at 1/8 resolution -> full resolution: convex (large) or bilinear (small)."""
        if self.mask_predictor is None:
            return bilinear_upsample(flow)
        return convex_upsample(flow, self.mask_predictor(hidden))

    def __call__(self, image1: jax.Array, image2: jax.Array, *, num_updates: int = 12, train: bool = False,
                 all_updates: bool = False) -> jax.Array:
        """Flow [B, H, W, 2] after `num_updates` updates ([num_updates, B, H, W, 2], one per update, with
        `all_updates`, as torchvision returns its list). Images [B, H, W, 3] in [-1, 1]."""
        if num_updates < 1:
            raise ValueError(f"RAFT num_updates must be at least 1, got {num_updates}")
        pyramid, hidden, context, coords0 = self.encode(image1, image2, train=train)

        def step(carry, _):
            hidden, coords1 = self.update(*carry, coords0, context, pyramid)
            return (hidden, coords1), (self.upsample(hidden, coords1 - coords0) if all_updates else None)

        (hidden, coords1), flows = jax.lax.scan(step, (hidden, coords0), length=num_updates)
        return flows if all_updates else self.upsample(hidden, coords1 - coords0)


@nnx.jit(static_argnames=("num_updates",))
def raft_flow(model: RAFT, image1: jax.Array, image2: jax.Array, num_updates: int = 12) -> jax.Array:
    """Flow [B, H, W, 2] (u right, v down, pixels) carrying `image1[b]` onto `image2[b]`, in inference mode.

    image1, image2: [B, H, W, 3] RGB, uint8 0..255 or float in [0, 1]; rescaled to [-1, 1] as torchvision's
    OpticalFlow transform (x / 255, then (x - 0.5) / 0.5). H and W multiples of 8 (and at least 64).
    """
    def prepare(image: jax.Array) -> jax.Array:
        return 2.0 * image.astype(jnp.float32) / (255.0 if image.dtype == jnp.uint8 else 1.0) - 1.0

    return model(prepare(image1), prepare(image2), num_updates=num_updates)


@functools.partial(nnx.jit, static_argnums=0)
def _init_raft(variant: str, seed: jax.Array) -> RAFT:
    return RAFT(variant, rngs=nnx.Rngs(jax.random.key(seed, impl="unsafe_rbg")))


def init_raft(variant: str = "large", seed: int = 0) -> RAFT:
    """RAFT with fresh random weights (the constructor's initialisers), built in one compiled program:
    eager construction compiles one program per layer shape (~25 s on 2 CPU cores, against ~15 s).
    Random bits from XLA's RngBitGenerator ("unsafe_rbg"), whose program compiles faster than threefry's."""
    return _init_raft(variant, jnp.int32(seed))


def save_raft(path, model: RAFT, variant: str) -> None:
    """Write `model` as a checkpoint folder `path` (features/network_checkpoint.py): raft.json
    {"variant": ...} and params/, nnx.state(model) (the parameters and, for "large", BatchNorm statistics)."""
    if variant != model.variant:
        raise ValueError(f"save_raft: variant {variant!r} is not the model's ({model.variant!r})")
    save_network(path, model, {"variant": variant}, "raft.json")


def load_raft(path) -> RAFT:
    """The RAFT of a checkpoint folder written by `save_raft` (no random initialisation)."""
    return load_network(path, "raft.json", lambda variant: RAFT(variant, rngs=nnx.Rngs(0)),
                        "RAFT checkpoint (python -m mer_jax.main --config configs/raft.py writes <workdir>/checkpoint)")
