"""The learned motion magnifier of Adaptive DSTNet (papers/adaptive-dstnet.txt section 3.2, Eq. 1-2).

The paper builds on learning-based motion magnification (Oh et al., ECCV 2018, its reference [10]); the
layer spec follows that network's public code (reference/reference-implementations.md section 5):
every convolution without bias, reflect padding, weights ~ truncated normal (std 0.02), images NHWC in
[-1, 1]. cK sS-F: K x K convolution, stride S, F features.

    encoder      x -> c7s1-16 + ReLU -> c3s2-32 + ReLU -> 3 ResBlocks(32)                 [B, H/2, W/2, 32]
      texture    -> c3s2-32 + ReLU -> 2 ResBlocks(32)                                       T  [B, H/4, W/4, 32]
      shape      -> 2 ResBlocks(32)                                                         S  [B, H/2, W/2, 32]
    manipulator  g = cKs1-32 + ReLU,  h = c3s1-32 (linear) + 1 ResBlock(32)
      "paper"          G_s = S_a + h(alpha * g(S_b - S_a))          (Eq. 1)
      "deep_motion_mag" G_s = S_b + h((alpha - 1) * g(S_b - S_a))   (the public code)
    decoder      T_a -> NN-upsample x2 + c3s1-32 + ReLU, concat G_s (64) -> 9 ResBlocks(64)
                 -> NN-upsample x2 -> c3s1-32 + ReLU -> c7s1-3                              b~ = f(T_a, G_s) (Eq. 2)
A ResBlock is conv3-ReLU-conv3 plus the identity, no ReLU after the sum.

The two manipulator forms differ in what alpha means. In the paper's form alpha = 0 gives exactly S_a
(h and g have no biases, so h(0) = 0): the output re-renders the onset frame; alpha = 1 gives the apex
only as far as h(g(.)) has learned the identity on shape differences. In deep_motion_mag's form alpha = 1
gives exactly S_b and alpha = 0 the onset as far as h(g(.)) is the identity. Both decode from the onset's
texture T_a as Eq. 2 says (the public code decodes from T_b). `g_kernel` = 3 is the paper's "3 x 3
convolution and ReLU" for g; the public code uses 7. Widths and block counts are fields, so tests can
build a tiny magnifier.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

MANIPULATORS = ("paper", "deep_motion_mag")
_INIT = nnx.initializers.truncated_normal(stddev=0.02)


class ReflectConv(nnx.Module):
    """K x K convolution without bias after reflect padding of K // 2 on each side (stride 1 keeps the
    size, stride 2 halves an even size)."""

    def __init__(self, in_features: int, out_features: int, kernel: int, *, stride: int = 1, rngs: nnx.Rngs):
        self.pad = kernel // 2
        self.conv = nnx.Conv(in_features, out_features, (kernel, kernel), strides=stride, padding="VALID",
                             use_bias=False, kernel_init=_INIT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        p = self.pad
        return self.conv(jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect"))


class ResBlock(nnx.Module):
    """x + conv3(ReLU(conv3(x))), same width, no activation after the sum."""

    def __init__(self, features: int, *, rngs: nnx.Rngs):
        self.conv1 = ReflectConv(features, features, 3, rngs=rngs)
        self.conv2 = ReflectConv(features, features, 3, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.conv2(jax.nn.relu(self.conv1(x)))


def _upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour upsampling x2 of [B, H, W, C]."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class MagnifierNet(nnx.Module):
    """Encoder, manipulator and decoder (module docstring). Images [B, H, W, 3] in [-1, 1], H and W
    multiples of 4."""

    def __init__(self, *, stem_features: int = 16, features: int = 32, encoder_blocks: int = 3,
                 texture_blocks: int = 2, shape_blocks: int = 2, manipulator_blocks: int = 1,
                 decoder_blocks: int = 9, g_kernel: int = 3, manipulator: str = "paper", rngs: nnx.Rngs):
        if manipulator not in MANIPULATORS:
            raise ValueError(f"MagnifierNet.manipulator must be one of {MANIPULATORS}, got {manipulator!r}")
        if g_kernel < 1 or g_kernel % 2 == 0:
            raise ValueError(f"MagnifierNet.g_kernel must be an odd kernel size, got {g_kernel}")
        f, blocks = features, lambda n, width: nnx.List([ResBlock(width, rngs=rngs) for _ in range(n)])
        self.manipulator = manipulator
        self.stem = ReflectConv(3, stem_features, 7, rngs=rngs)
        self.down = ReflectConv(stem_features, f, 3, stride=2, rngs=rngs)
        self.encoder_blocks = blocks(encoder_blocks, f)
        self.texture_down = ReflectConv(f, f, 3, stride=2, rngs=rngs)
        self.texture_blocks = blocks(texture_blocks, f)
        self.shape_blocks = blocks(shape_blocks, f)
        self.g = ReflectConv(f, f, g_kernel, rngs=rngs)
        self.h_conv = ReflectConv(f, f, 3, rngs=rngs)
        self.h_blocks = blocks(manipulator_blocks, f)
        self.texture_up = ReflectConv(f, f, 3, rngs=rngs)
        self.decoder_blocks = blocks(decoder_blocks, 2 * f)
        self.up = ReflectConv(2 * f, f, 3, rngs=rngs)
        self.out = ReflectConv(f, 3, 7, rngs=rngs)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(texture T [B, H/4, W/4, F], shape S [B, H/2, W/2, F]) of images [B, H, W, 3]."""
        if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(f"MagnifierNet takes RGB images [B, H, W, 3] with H and W multiples of 4, "
                             f"got shape {x.shape}")
        y = jax.nn.relu(self.down(jax.nn.relu(self.stem(x))))
        for block in self.encoder_blocks:
            y = block(y)
        texture = jax.nn.relu(self.texture_down(y))
        for block in self.texture_blocks:
            texture = block(texture)
        shape = y
        for block in self.shape_blocks:
            shape = block(shape)
        return texture, shape

    def manipulate(self, shape_a: jax.Array, shape_b: jax.Array, alpha) -> jax.Array:
        """Magnified shape G_s (Eq. 1, or deep_motion_mag's form); alpha a scalar or one per sample [B]."""
        alpha = jnp.asarray(alpha, shape_a.dtype)
        alpha = alpha.reshape((-1, 1, 1, 1)) if alpha.ndim else alpha
        factor, base = (alpha, shape_a) if self.manipulator == "paper" else (alpha - 1.0, shape_b)
        y = self.h_conv(factor * jax.nn.relu(self.g(shape_b - shape_a)))
        for block in self.h_blocks:
            y = block(y)
        return base + y

    def decode(self, texture: jax.Array, shape: jax.Array) -> jax.Array:
        """f(T, G_s) of Eq. 2: an image [B, H, W, 3], not clipped."""
        y = jnp.concatenate([jax.nn.relu(self.texture_up(_upsample(texture))), shape], axis=-1)
        for block in self.decoder_blocks:
            y = block(y)
        return self.out(jax.nn.relu(self.up(_upsample(y))))

    def __call__(self, a: jax.Array, b: jax.Array, alpha, *, train: bool = False) -> jax.Array:
        """The magnified apex b~ from onset a and apex b ([B, H, W, 3] in [-1, 1]); clipped to [-1, 1]
        unless `train`."""
        texture_a, shape_a = self.encode(a)
        _, shape_b = self.encode(b)
        out = self.decode(texture_a, self.manipulate(shape_a, shape_b, alpha))
        return out if train else jnp.clip(out, -1.0, 1.0)
