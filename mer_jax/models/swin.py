"""Swin transformer in 2-D and 3-D (Video Swin) form, with EDMDBN's accumulated token attention.

The backbone of both EDMDBN branches (papers/edmdbn.txt, section 3.3, Fig. 2-3, Eq. 1-2): the Video
Swin Transformer (Liu et al., CVPR 2022) as EDMDBN's public code configures it (likemby/EDMDBN
`models/long_short_fusenet.py::custom_swin`, `models/swin_transformer_3d2.py`; reference notes
section 1, "Backbone"). One implementation serves both forms: an image is a clip of length 1,
`[B, 1, H, W, C]` with patch depth 1.

    input [B, D, H, W, C_in]                         detail branch: [B, 8, 224, 224, 3], patch (8, 4, 4)
      PatchEmbed: (pd, ph, pw) patches -> Linear -> LayerNorm      section 3.3: 8x4x4x3 = 384 values
                                                                   per token -> C; T/8 x 56 x 56 x C
      stage i = 0..n-1 (depths (2, 2, 6), heads (4, 8, 16), width C * 2**i, C = 128):
        `depth` Swin blocks, alternating plain and shifted windows
        token attention (Eq. 1-2), accumulated over the stages
        PatchMerging (2x2 -> 1, width x2), every stage but the last      Fig. 2: 56^2 -> 28^2 -> 14^2
      final LayerNorm                                                    num_features = 4C = 512
    output [B, D', H', W', num_features]             D' = 1 for both EDMDBN branches; 14 x 14 at 224

Swin block (Video Swin `SwinTransformerBlock3D`): x + DropPath(W-MSA(LN(x))), x + DropPath(MLP(LN(x))).
W-MSA pads the token grid at the end to window multiples with zeros (after the LayerNorm, so padded
tokens take part in attention as zeros, as in Video Swin), rolls it by -shift for shifted blocks,
attends within each window with a relative position bias and, when shifted, the -100 mask between
tokens that came from different regions of the grid, then rolls back and crops.

Window and shift per stage (Video Swin `get_window_size`): on each axis where the token grid is no
longer than the configured window (8, 7, 7), the window is the grid and the shift 0. Both EDMDBN
branches reach D' = 1, so the effective window is (1, 7, 7) with shift (0, 3, 3).

The relative position bias table is sized for the CONFIGURED window ((2*8-1)(2*7-1)(2*7-1) = 2535
rows per head, so the parameter count matches the public code); the effective window's token pairs
index it with the configured window's strides. For D' = 1 this is exactly Video Swin's
`relative_position_index[:N, :N]`; for other effective windows Video Swin's slice takes the first N
tokens of the configured window in flattened order, which are not the effective window's geometry,
and we keep the geometry instead.

Token attention (EDMDBN Eq. 1-2; public code `SpatialAttention3D`, on with `--use_swin_CA`), after
each stage's blocks and before its PatchMerging, in every stage including the last:
    a = sigmoid(FC([mean_c(x); max_c(x)]))          Eq. 1; the code's Conv3d(2 -> 1, k=1), mean first
    a = a * MaxPool(1, 2, 2)(a_previous_stage)      Eq. 2 (previous map zero-padded to even H, W)
    x = x * a
The paper writes [Max; Avg]; we follow the code's [mean, max] order (the FC learns either).
`token_attention=False` is paper Table 8's plain "Swin-T".

Initialisation as Video Swin's `_init_weights`: Linear layers of attention, MLP and merging get
truncated normal weights (timm's `trunc_normal_`: std 0.02, truncated at +-2 absolute) and zero
biases; the relative position bias table gets the same draw; LayerNorms ones / zeros (epsilon 1e-5,
two-pass variance as PyTorch). The patch projection and the token attention FC are Conv3d layers in the public
code and keep PyTorch's default U(+-1/sqrt(fan_in)) (layers.linear).

The patch projection reads each patch in (pd, ph, pw, C_in) order; PyTorch's Conv3d kernel is
(C_out, C_in, pd, ph, pw), so loading its weights needs that permutation.

Mixed precision: the attention softmax runs in float32 and is cast back to the compute dtype, so
bfloat16 logits (with the -100 mask) stay stable; the bias table is cast to the compute dtype at use.

Size (closed form, tests/test_swin.py): patch embedding (pd ph pw C_in + 1) C + 2C; per block of width
c with h heads 12c^2 + 13c + 2535h; per merging 8c^2 + 8c; 3 per token attention; final LN 8C.
EDMDBN's configuration (C = 128, 3 input channels, patch (8, 4, 4)): 21,903,569 parameters per branch;
two branches plus the 512 x 14 x 14 = 100,352 x K head give the public code's ~44.1M.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mer_jax.models.layers import (TRANSFORMER_INIT, Mlp, dropout_keys, linear, transformer_layer_norm,
                                   transformer_linear)

MASK_VALUE = -100.0         # Swin: attention logit added between tokens of different shifted regions


def effective_window(grid: tuple[int, ...], window: tuple[int, ...], shift: tuple[int, ...]):
    """(window, shift) used on a token grid (Video Swin `get_window_size`): on every axis where the grid
    is no longer than the window, the window shrinks to the grid and the shift is 0."""
    use_window = tuple(min(n, w) for n, w in zip(grid, window))
    use_shift = tuple(0 if n <= w else s for n, w, s in zip(grid, window, shift))
    return use_window, use_shift


def window_partition(x, window: tuple[int, int, int]):
    """[B, D, H, W, C] (each of D, H, W a multiple of `window`) -> [B * windows, Wd * Wh * Ww, C], windows
    in (D, H, W) raster order, tokens within a window likewise. Works on NumPy and JAX arrays."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window
    x = x.reshape(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def window_reverse(windows, window: tuple[int, int, int], grid: tuple[int, int, int, int]):
    """Inverse of `window_partition`: [B * windows, Wd * Wh * Ww, C] -> [B, D, H, W, C], grid = (B, D, H, W)."""
    b, d, h, w = grid
    wd, wh, ww = window
    x = windows.reshape(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def relative_position_index(window: tuple[int, int, int], table_window: tuple[int, int, int]) -> np.ndarray:
    """[N, N] rows of the bias table for the token pairs (i, j) of a `window` (N = Wd Wh Ww tokens): the
    offset c_i - c_j, shifted to be non-negative and flattened with the strides of the table's
    (configured) window `table_window`, ((2Wh-1)(2Ww-1), 2Ww-1, 1) (Video Swin `WindowAttention3D`)."""
    coords = np.stack(np.meshgrid(*(np.arange(n) for n in window), indexing="ij")).reshape(3, -1)
    offsets = coords[:, :, None] - coords[:, None, :] + (np.asarray(table_window) - 1)[:, None, None]
    _, th, tw = table_window
    strides = np.array([(2 * th - 1) * (2 * tw - 1), 2 * tw - 1, 1])
    return np.tensordot(strides, offsets, axes=1)


def shifted_window_mask(grid: tuple[int, int, int], window: tuple[int, int, int],
                        shift: tuple[int, int, int]) -> np.ndarray:
    """[windows, N, N] additive mask (0 or -100) for a padded grid (D, H, W) rolled by -shift.

    Swin labels the regions of the grid with the slices (0, -w), (-w, -s), (-s, None) on each axis; the
    roll brings parts of different regions into one window, and tokens of different regions must not
    attend to each other. On an axis with shift 0 the whole axis is one region (as Swin's slices give,
    the last slice (-0, None) covering it all)."""
    def axis_labels(n, w, s):
        i = np.arange(n)
        return (i >= n - w).astype(np.int64) + (i >= n - s) if s > 0 else np.zeros(n, np.int64)

    ld, lh, lw = (axis_labels(n, w, s) for n, w, s in zip(grid, window, shift))
    regions = ld[:, None, None] * 9 + lh[None, :, None] * 3 + lw[None, None, :]
    labels = window_partition(regions[None, ..., None], window)[..., 0]          # [windows, N]
    return np.where(labels[:, :, None] != labels[:, None, :], MASK_VALUE, 0.0).astype(np.float32)


def _drop_path(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Stochastic depth: per sample, keep the residual branch with probability 1 - rate, scaled by
    1 / (1 - rate); identity without a key (eval) or at rate 0."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, (x.shape[0],) + (1,) * (x.ndim - 1))
    return x * (keep / (1.0 - rate)).astype(x.dtype)


class PatchEmbed(nnx.Module):
    """Non-overlapping (pd, ph, pw) patches -> Linear -> LayerNorm (Video Swin `PatchEmbed3D`, patch_norm).

    D, H, W are zero-padded at the end to patch multiples. The Linear over the pd*ph*pw*C_in values of
    a patch equals the reference's stride = kernel Conv3d and keeps its PyTorch default init."""

    def __init__(self, in_channels: int, embed_dim: int, patch_size: tuple[int, int, int], *, rngs: nnx.Rngs):
        self.patch_size = tuple(patch_size)
        self.proj = linear(math.prod(patch_size) * in_channels, embed_dim, rngs=rngs)
        self.norm = transformer_layer_norm(embed_dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, d, h, w, c = x.shape
        pd, ph, pw = self.patch_size
        x = jnp.pad(x, ((0, 0), (0, -d % pd), (0, -h % ph), (0, -w % pw), (0, 0)))
        d, h, w = x.shape[1] // pd, x.shape[2] // ph, x.shape[3] // pw
        x = x.reshape(b, d, pd, h, ph, w, pw, c).transpose(0, 1, 3, 5, 2, 4, 6, 7)
        return self.norm(self.proj(x.reshape(b, d, h, w, pd * ph * pw * c)))


class WindowAttention(nnx.Module):
    """(Shifted) window multi-head self-attention on a token grid [B, D, H, W, C] (W-MSA / SW-MSA).

    qkv with bias, scale head_dim**-0.5, relative position bias from a table sized for `window` (the
    configured window), the shifted-window mask; pad, roll, partition, attend, merge, roll back, crop."""

    def __init__(self, dim: int, num_heads: int, window: tuple[int, int, int], *, rngs: nnx.Rngs):
        if dim % num_heads:
            raise ValueError(f"Swin attention width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.window = tuple(window)
        self.qkv = transformer_linear(dim, 3 * dim, rngs=rngs)
        self.proj = transformer_linear(dim, dim, rngs=rngs)
        rows = math.prod(2 * n - 1 for n in self.window)   # (2*8-1)(2*7-1)(2*7-1) = 2535 for (8, 7, 7)
        self.relative_position_bias_table = nnx.Param(TRANSFORMER_INIT(rngs.params(), (rows, num_heads)))

    def __call__(self, x: jax.Array, *, shifted: bool) -> jax.Array:
        b, d, h, w, _ = x.shape
        configured_shift = tuple(n // 2 for n in self.window) if shifted else (0, 0, 0)
        window, shift = effective_window((d, h, w), self.window, configured_shift)
        x = jnp.pad(x, ((0, 0),) + tuple((0, -n % k) for n, k in zip((d, h, w), window)) + ((0, 0),))
        padded = x.shape[1:4]
        rolled = any(shift)
        if rolled:
            x = jnp.roll(x, tuple(-s for s in shift), axis=(1, 2, 3))
        mask = shifted_window_mask(padded, window, shift) if rolled else None
        windows = self._attend(window_partition(x, window), window, mask)
        x = window_reverse(windows, window, (b,) + padded)
        if rolled:
            x = jnp.roll(x, shift, axis=(1, 2, 3))
        return x[:, :d, :h, :w]

    def _attend(self, windows: jax.Array, window: tuple[int, int, int], mask: np.ndarray | None) -> jax.Array:
        """Attention within each window: [B * windows, N, C] -> same shape."""
        count, n, c = windows.shape
        heads = self.num_heads
        q, k, v = self.qkv(windows).reshape(count, n, 3, heads, c // heads).transpose(2, 0, 3, 1, 4)
        logits = (q * (c // heads) ** -0.5) @ k.swapaxes(-1, -2)                 # [B * windows, heads, N, N]
        bias = self.relative_position_bias_table[...][relative_position_index(window, self.window)]
        logits = logits + bias.transpose(2, 0, 1).astype(logits.dtype)
        if mask is not None:
            per_sample = mask.shape[0]
            logits = logits.reshape(count // per_sample, per_sample, heads, n, n) + \
                jnp.asarray(mask, logits.dtype)[None, :, None]
            logits = logits.reshape(count, heads, n, n)
        weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
        return self.proj((weights @ v).transpose(0, 2, 1, 3).reshape(count, n, c))


class SwinBlock(nnx.Module):
    """x + DropPath(W-MSA(LN(x))), then x + DropPath(MLP(LN(x))) (Video Swin `SwinTransformerBlock3D`).

    `remat` recomputes the block's activations in the backward pass (nnx.remat); results are identical."""

    def __init__(self, dim: int, num_heads: int, window: tuple[int, int, int], *, shifted: bool,
                 mlp_ratio: float, drop_path_rate: float, remat: bool, rngs: nnx.Rngs):
        self.shifted = shifted
        self.drop_path_rate = drop_path_rate
        self.remat = remat
        self.norm1 = transformer_layer_norm(dim, rngs=rngs)
        self.attn = WindowAttention(dim, num_heads, window, rngs=rngs)
        self.norm2 = transformer_layer_norm(dim, rngs=rngs)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), rngs=rngs)

    def __call__(self, x: jax.Array, keys: tuple) -> jax.Array:
        """`keys`: the drop-path keys of the attention and MLP branches (None in eval)."""
        if self.remat:
            return nnx.remat(SwinBlock._forward)(self, x, keys)
        return self._forward(x, keys)

    def _forward(self, x: jax.Array, keys: tuple) -> jax.Array:
        x = x + _drop_path(self.attn(self.norm1(x), shifted=self.shifted), self.drop_path_rate, keys[0])
        return x + _drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, keys[1])


def _max_pool_2x2(a: jax.Array) -> jax.Array:
    """MaxPool (1, 2, 2) of a map [B, D, H, W], H and W zero-padded at the end to even (as PatchMerging)."""
    b, d, h, w = a.shape
    a = jnp.pad(a, ((0, 0), (0, 0), (0, h % 2), (0, w % 2)))
    return a.reshape(b, d, a.shape[2] // 2, 2, a.shape[3] // 2, 2).max(axis=(3, 5))


class TokenAttention(nnx.Module):
    """EDMDBN's accumulated token attention (section 3.3, Fig. 3, Eq. 1-2; public `SpatialAttention3D`).

    a = sigmoid(FC([mean_c(x); max_c(x)])) (Eq. 1; FC = the code's Conv3d(2 -> 1, k=1): 2 weights + bias);
    with a previous stage's map, a = a * MaxPool(1, 2, 2)(previous) (Eq. 2); returns (x * a, a)."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.fc = linear(2, 1, rngs=rngs)   # PyTorch Conv3d default init, fan_in 2

    def __call__(self, x: jax.Array, previous: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        a = jax.nn.sigmoid(self.fc(jnp.stack([x.mean(-1), x.max(-1)], axis=-1)))[..., 0]
        if previous is not None:
            a = a * _max_pool_2x2(previous).astype(a.dtype)
        return x * a[..., None], a


class PatchMerging(nnx.Module):
    """Per frame: pad H, W to even, concatenate the 2x2 neighbours x[0::2, 0::2], x[1::2, 0::2],
    x[0::2, 1::2], x[1::2, 1::2] (4C), LayerNorm, Linear(4C -> 2C, no bias) (Video Swin `PatchMerging`)."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.norm = transformer_layer_norm(4 * dim, rngs=rngs)
        self.reduction = transformer_linear(4 * dim, 2 * dim, use_bias=False, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        _, _, h, w, _ = x.shape
        x = jnp.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        x = jnp.concatenate([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinStage(nnx.Module):
    """`depth` Swin blocks (shift 0, window // 2, 0, ...), token attention (if on), PatchMerging (if not
    the last stage) (Video Swin `BasicLayer` plus EDMDBN's token attention before the merging)."""

    def __init__(self, dim: int, depth: int, num_heads: int, window: tuple[int, int, int], *, mlp_ratio: float,
                 drop_path_rates: list[float], token_attention: bool, downsample: bool, remat: bool,
                 rngs: nnx.Rngs):
        self.blocks = nnx.List([SwinBlock(dim, num_heads, window, shifted=i % 2 == 1, mlp_ratio=mlp_ratio,
                                          drop_path_rate=drop_path_rates[i], remat=remat, rngs=rngs)
                                for i in range(depth)])
        self.token_attention = TokenAttention(rngs=rngs) if token_attention else None
        self.downsample = PatchMerging(dim, rngs=rngs) if downsample else None

    def __call__(self, x: jax.Array, previous_attention: jax.Array | None, keys) -> tuple[jax.Array, jax.Array | None]:
        """-> (tokens for the next stage, this stage's attention map [B, D, H, W] or None)."""
        for i, block in enumerate(self.blocks):
            x = block(x, (keys[2 * i], keys[2 * i + 1]))
        attention = None
        if self.token_attention is not None:
            x, attention = self.token_attention(x, previous_attention)
        if self.downsample is not None:
            x = self.downsample(x)
        return x, attention


class SwinTransformer(nnx.Module):
    """(Video) Swin transformer with optional accumulated token attention; see the module docstring.

    `x` [B, D, H, W, C_in] -> features [B, D', H', W', num_features] after the final LayerNorm; an image
    is D = 1 with patch_size (1, 4, 4) (EDMDBN entire branch). Defaults are EDMDBN's (public code
    `custom_swin`): patch (8, 4, 4), C = 128, depths (2, 2, 6), heads (4, 8, 16), window (8, 7, 7),
    mlp_ratio 4, drop_path 0.2 (stochastic depth rates linspace(0, 0.2, 10) over the blocks in order).
    Drop path needs `dropout_key` when `train=True` (the key is a call argument, not model state).
    `return_attention` also returns the per-stage token-attention maps [B, D_s, H_s, W_s] (the
    accumulated maps of Eq. 2, one per stage at that stage's token grid).
    """

    def __init__(self, *, in_channels: int = 3, patch_size=(8, 4, 4), embed_dim: int = 128, depths=(2, 2, 6),
                 num_heads=(4, 8, 16), window_size=(8, 7, 7), mlp_ratio: float = 4.0, drop_path_rate: float = 0.2,
                 token_attention: bool = True, remat: bool = False, rngs: nnx.Rngs):
        if len(patch_size) != 3 or len(window_size) != 3:
            raise ValueError(f"Swin patch_size and window_size must be (D, H, W) triples, got {patch_size} "
                             f"and {window_size}")
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(f"Swin depths {depths} and num_heads {num_heads} must name the same stages")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"Swin drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.in_channels = in_channels
        self.drop_path_rate = drop_path_rate
        self.token_attention = token_attention
        self.patch_embed = PatchEmbed(in_channels, embed_dim, tuple(patch_size), rngs=rngs)
        rates = np.linspace(0.0, drop_path_rate, sum(depths)).tolist()
        starts = np.cumsum((0,) + tuple(depths)).tolist()
        self.layers = nnx.List([
            SwinStage(embed_dim * 2 ** i, depth, heads, tuple(window_size), mlp_ratio=mlp_ratio,
                      drop_path_rates=rates[starts[i]:starts[i + 1]], token_attention=token_attention,
                      downsample=i < len(depths) - 1, remat=remat, rngs=rngs)
            for i, (depth, heads) in enumerate(zip(depths, num_heads))])
        self.num_features = embed_dim * 2 ** (len(depths) - 1)   # 4C = 512 for C = 128 (section 3.5)
        self.norm = transformer_layer_norm(self.num_features, rngs=rngs)

    def __call__(self, x: jax.Array, *, train: bool, dropout_key: jax.Array | None = None,
                 return_attention: bool = False):
        """x [B, D, H, W, C_in] -> features [B, D', H', W', num_features]; with `return_attention`
        (needs token_attention=True), (features, [per-stage attention maps [B, D_s, H_s, W_s]])."""
        if x.ndim != 5 or x.shape[-1] != self.in_channels:
            raise ValueError(f"SwinTransformer input must be [B, D, H, W, {self.in_channels}], got {list(x.shape)}")
        if return_attention and not self.token_attention:
            raise ValueError("SwinTransformer return_attention needs token_attention=True")
        blocks = sum(len(stage.blocks) for stage in self.layers)
        _, keys = dropout_keys("SwinTransformer", train=train, rate=self.drop_path_rate, key=dropout_key,
                               count=2 * blocks)
        x = self.patch_embed(x)
        attention, maps, start = None, [], 0
        for stage in self.layers:
            count = 2 * len(stage.blocks)
            x, attention = stage(x, attention, keys[start:start + count])
            maps.append(attention)
            start += count
        x = self.norm(x)
        return (x, maps) if return_attention else x
