"""MADV-Net's video transformer blocks: the 3-D-video-to-tokens module and convolution-projection attention.

papers/madv-net.txt, section 3.2.1 (Fig. 2) and 3.2.3. Token grids are [B, T, H, W, C] (channels last).

    VideoToTokens (Eq. 2): Conv3d (no bias) -> BatchNorm -> MaxPool3d
    ConvProjection (Eq. 1): per frame, depthwise s x s conv (no bias) -> BatchNorm -> pointwise (Linear) ->
        flatten; one projection each for Q, K and V. A class token bypasses the depthwise conv and the
        BatchNorm (it has no place on the grid) and takes the pointwise projection.
    ConvAttention: multi-head self-attention on the projected Q, K, V (full length: K and V are not
        subsampled, as the paper's 3 L d^2 + L^2 d term of Eq. 24 says), softmax(Q K^T / sqrt(d_h)) V,
        heads concatenated, then an output Linear(d, d) (standard MSA; Eq. 24 does not count it).
    TransformerLayer (Eq. 16): x + MSA(LN(x)), then x + MLP(LN(x)), MLP = Linear(d, r d) -> GELU -> Linear.

The paper names Conv2d with an s x s kernel (Eq. 1, "Reshape2d"), so on a video grid the depthwise
convolution runs on each frame's H x W token map. Convolutions are nnx.Conv (3-D and depthwise shapes
that layers.conv does not build) lowered through fold_conv.conv_general_dilated, so the trainer's vmap over
folds batches them as it batches layers.conv. Initialisation: convolutions keep PyTorch's default
U(+-1/sqrt(fan_in)); transformer Linear layers take ViT/CvT's truncated normal (std 0.02) with zero
biases; LayerNorm epsilon 1e-5 (PyTorch). Mixed precision: the attention softmax runs in float32 and is
cast back to the compute dtype (as swin.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mer_jax.models import fold_conv, layers

# PyTorch's Conv default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (as layers.py).
_conv_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def same_padding(kernel: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """k // 2 on both sides of every axis (odd kernels keep the size at stride 1)."""
    return tuple((k // 2, k // 2) for k in kernel)


def conv_output(size: int, kernel: int, stride: int) -> int:
    """Output length of a convolution or pool with padding kernel // 2 (PyTorch's arithmetic)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def conv3d(in_features: int, out_features: int, kernel: tuple[int, int, int], *, stride=(1, 1, 1),
           use_bias: bool = True, rngs: nnx.Rngs) -> nnx.Conv:
    """3-D convolution, padding kernel // 2, batched over folds as fold_conv says."""
    return nnx.Conv(in_features, out_features, tuple(kernel), strides=tuple(stride), padding=same_padding(kernel),
                    use_bias=use_bias, kernel_init=_conv_init, conv_general_dilated=fold_conv.conv_general_dilated,
                    rngs=rngs)


class VideoToTokens(nnx.Module):
    """Eq. 2: Out(z) = 3D_Maxpool(BN(3DConv(z))) on a clip [B, T, H, W, C_in] -> tokens [B, T', H', W', C].

    Conv3d `kernel` at `stride`, padding kernel // 2, no bias (a BatchNorm follows); MaxPool3d `pool_window`
    at `pool_stride`, padding window // 2 (padded cells never win the max)."""

    def __init__(self, in_features: int, dim: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
                 pool_window: tuple[int, int, int], pool_stride: tuple[int, int, int], *, rngs: nnx.Rngs):
        self.conv = conv3d(in_features, dim, kernel, stride=stride, use_bias=False, rngs=rngs)
        self.norm = layers.batch_norm(dim, rngs=rngs)
        self.pool_window, self.pool_stride = tuple(pool_window), tuple(pool_stride)

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        x = self.norm(self.conv(x), use_running_average=not train)
        return nnx.max_pool(x, self.pool_window, self.pool_stride, padding=same_padding(self.pool_window))


class ConvProjection(nnx.Module):
    """Eq. 1: z^{q,k,v} = Flatten(Conv2d(Reshape2d(z), s)); Conv2d = depthwise s x s -> BN -> pointwise.

    Input: grid tokens [B, T, H, W, d] and an optional class token [B, 1, d]; output [B, (1 +) T H W, d],
    the class token first."""

    def __init__(self, dim: int, kernel: int, *, rngs: nnx.Rngs):
        self.depthwise = nnx.Conv(dim, dim, (kernel, kernel), padding=same_padding((kernel, kernel)),
                                  feature_group_count=dim, use_bias=False, kernel_init=_conv_init,
                                  conv_general_dilated=fold_conv.conv_general_dilated, rngs=rngs)
        self.norm = layers.batch_norm(dim, rngs=rngs)
        self.pointwise = layers.transformer_linear(dim, dim, rngs=rngs)

    def __call__(self, grid: jax.Array, cls: jax.Array | None, *, train: bool) -> jax.Array:
        b, t, h, w, d = grid.shape
        maps = self.norm(self.depthwise(grid.reshape(b * t, h, w, d)), use_running_average=not train)
        tokens = maps.reshape(b, t * h * w, d)
        if cls is not None:
            tokens = jnp.concatenate([cls.astype(tokens.dtype), tokens], axis=1)
        return self.pointwise(tokens)


class ConvAttention(nnx.Module):
    """Multi-head self-attention whose Q, K, V come from three ConvProjections (section 3.2.1)."""

    def __init__(self, dim: int, num_heads: int, kernel: int, *, rngs: nnx.Rngs):
        if dim % num_heads:
            raise ValueError(f"MADV-Net attention width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = ConvProjection(dim, kernel, rngs=rngs)
        self.k = ConvProjection(dim, kernel, rngs=rngs)
        self.v = ConvProjection(dim, kernel, rngs=rngs)
        self.out = layers.transformer_linear(dim, dim, rngs=rngs)

    def __call__(self, grid: jax.Array, cls: jax.Array | None, *, train: bool) -> jax.Array:
        """[B, T, H, W, d] grid (+ [B, 1, d] class token) -> [B, (1 +) T H W, d]."""
        heads = self.num_heads

        def split(x):
            b, n, d = x.shape
            return x.reshape(b, n, heads, d // heads).transpose(0, 2, 1, 3)

        q, k, v = (split(p(grid, cls, train=train)) for p in (self.q, self.k, self.v))
        logits = (q * q.shape[-1] ** -0.5) @ k.swapaxes(-1, -2)                  # [B, heads, L, L]
        weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
        y = (weights @ v).transpose(0, 2, 1, 3)
        return self.out(y.reshape(y.shape[0], y.shape[1], -1))


class TransformerLayer(nnx.Module):
    """Eq. 16: x + MSA(LN(x)), x + MLP(LN(x)) (pre-norm, ViT / CvT) on a token grid and optional class token."""

    def __init__(self, dim: int, num_heads: int, kernel: int, mlp_ratio: float, *, rngs: nnx.Rngs):
        self.norm1 = layers.transformer_layer_norm(dim, rngs=rngs)
        self.attn = ConvAttention(dim, num_heads, kernel, rngs=rngs)
        self.norm2 = layers.transformer_layer_norm(dim, rngs=rngs)
        self.mlp = layers.Mlp(dim, int(round(dim * mlp_ratio)), rngs=rngs)

    def __call__(self, grid: jax.Array, cls: jax.Array | None, *, train: bool):
        """-> (grid [B, T, H, W, d], class token [B, 1, d] or None)."""
        shape = grid.shape
        tokens = grid.reshape(shape[0], -1, shape[-1])
        if cls is not None:
            tokens = jnp.concatenate([cls.astype(tokens.dtype), tokens], axis=1)
        normed = self.norm1(tokens)
        normed_cls, normed_grid = (normed[:, :1], normed[:, 1:]) if cls is not None else (None, normed)
        tokens = tokens + self.attn(normed_grid.reshape(shape), normed_cls, train=train)
        tokens = tokens + self.mlp(self.norm2(tokens))
        if cls is not None:
            return tokens[:, 1:].reshape(shape), tokens[:, :1]
        return tokens.reshape(shape), None
