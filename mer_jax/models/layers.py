"""Blocks shared by the networks, with PyTorch's default initialisation and BatchNorm settings.

The public reference code of these networks is PyTorch and keeps PyTorch's defaults, so the layers
here do too: weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)),
BatchNorm momentum 0.1 (0.9 in Flax's convention) and epsilon 1e-5. Tensors are NHWC. The transformer
pieces (Video Swin in EDMDBN, the convolution-projection transformer in MADV-Net) use timm's ViT
initialisation instead: `transformer_linear`, `transformer_layer_norm`, `Mlp`.
"""
from __future__ import annotations

import jax
from flax import nnx

from mer_jax.models import fold_conv

# timm trunc_normal_(std=.02), truncated at a=-2, b=2 in absolute terms (+-100 standard deviations): the
# Linear weights, class tokens, position embeddings and relative-position tables of ViT-style networks.
TRANSFORMER_INIT = nnx.initializers.truncated_normal(stddev=0.02, lower=-100.0, upper=100.0)
TRANSFORMER_LAYER_NORM_EPSILON = 1e-5   # nn.LayerNorm default

# U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for Conv2d and Linear weights.
_TORCH_KERNEL_INIT = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias(layer: nnx.Conv | nnx.Linear, fan_in: int, rngs: nnx.Rngs) -> None:
    """Replace the bias (zeros in Flax) by PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = fan_in ** -0.5
    layer.bias[...] = jax.random.uniform(rngs.params(), layer.bias.shape, minval=-bound, maxval=bound)


def conv(in_features: int, out_features: int, kernel: int, *, stride: int = 1, padding: int = 0,
         rngs: nnx.Rngs) -> nnx.Conv:
    """Square convolution with bias, explicit symmetric padding (as PyTorch's `padding=`); batched over
    folds as `train.fold_conv` says (fold_conv.py)."""
    layer = nnx.Conv(in_features, out_features, (kernel, kernel), strides=stride,
                     padding=((padding, padding), (padding, padding)), kernel_init=_TORCH_KERNEL_INIT,
                     conv_general_dilated=fold_conv.conv_general_dilated, rngs=rngs)
    _torch_bias(layer, kernel * kernel * in_features, rngs)
    return layer


def linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    layer = nnx.Linear(in_features, out_features, kernel_init=_TORCH_KERNEL_INIT, rngs=rngs)
    _torch_bias(layer, in_features, rngs)
    return layer


def batch_norm(num_features: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm2d/1d defaults: momentum 0.1 (PyTorch) = 0.9 (Flax), epsilon 1e-5, two-pass variance."""
    return nnx.BatchNorm(num_features, momentum=0.9, epsilon=1e-5, use_fast_variance=False, rngs=rngs)


def dropout_keys(model: str, *, train: bool, rate: float, key: jax.Array | None, count: int):
    """(whether dropout is on, one PRNG key per dropout layer or `count` Nones) for a model's call:
    dropout runs in training when `rate` > 0, and then the call must pass `dropout_key`."""
    use_dropout = train and rate > 0
    if use_dropout and key is None:
        raise ValueError(f"{model} has dropout: pass dropout_key=<PRNG key> when train=True "
                         "(or build it with dropout_rate=0.0)")
    return use_dropout, (jax.random.split(key, count) if use_dropout else (None,) * count)


class ResBlock(nnx.Module):
    """conv3x3 (stride 2 if `downsample`) + BN + ReLU, conv3x3 + BN, plus a shortcut, then ReLU.

    The shortcut is conv1x1 (same stride) + BN when the block downsamples or changes the width, the
    identity otherwise. Padding 1 halves 48 -> 24 -> 12 -> 6 exactly as PyTorch does.
    """

    def __init__(self, in_features: int, out_features: int, *, downsample: bool, rngs: nnx.Rngs):
        stride = 2 if downsample else 1
        self.conv1 = conv(in_features, out_features, 3, stride=stride, padding=1, rngs=rngs)
        self.bn1 = batch_norm(out_features, rngs=rngs)
        self.conv2 = conv(out_features, out_features, 3, padding=1, rngs=rngs)
        self.bn2 = batch_norm(out_features, rngs=rngs)
        projected = downsample or in_features != out_features
        self.shortcut_conv = conv(in_features, out_features, 1, stride=stride, rngs=rngs) if projected else None
        self.shortcut_bn = batch_norm(out_features, rngs=rngs) if projected else None

    def refine(self, y: jax.Array) -> jax.Array:
        """The residual branch after its second BatchNorm, before the sum; blocks with attention
        (DFR-Net Eq. 12) override it."""
        return y

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))
        y = self.refine(self.bn2(self.conv2(y), use_running_average=not train))
        if self.shortcut_conv is not None:
            x = self.shortcut_bn(self.shortcut_conv(x), use_running_average=not train)
        return jax.nn.relu(y + x)


def transformer_linear(in_features: int, out_features: int, *, use_bias: bool = True, rngs: nnx.Rngs) -> nnx.Linear:
    """Linear with ViT's init: truncated normal (std 0.02) weights, zero bias."""
    return nnx.Linear(in_features, out_features, use_bias=use_bias, kernel_init=TRANSFORMER_INIT, rngs=rngs)


def transformer_layer_norm(features: int, *, rngs: nnx.Rngs) -> nnx.LayerNorm:
    """nn.LayerNorm's epsilon, with the two-pass variance PyTorch computes."""
    return nnx.LayerNorm(features, epsilon=TRANSFORMER_LAYER_NORM_EPSILON, use_fast_variance=False, rngs=rngs)


class Mlp(nnx.Module):
    """A transformer block's MLP: Linear(d, hidden) -> GELU (exact erf, nn.GELU's default) -> Linear(hidden, d)."""

    def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs):
        self.fc1 = transformer_linear(dim, hidden, rngs=rngs)
        self.fc2 = transformer_linear(hidden, dim, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))
