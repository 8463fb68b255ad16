"""Off-ApexNet (Gan, Liong, Yau, Huang and Tan, Signal Processing: Image Communication 74, 2019).

The authors released no code; meb's `OffApexNet` (tvaranka/meb `meb/models/me_networks.py`) is the
only code reference, and this module follows it:

    input: channels 0 and 1 (u, v) of inputs["flow"], [B, 28, 28, 2]
    Conv2d(2 -> 6, 3x3, padding 1) -> ReLU -> MaxPool(2, /2)      28 -> 14
    Conv2d(6 -> 16, 3x3, padding 1) -> ReLU -> MaxPool(2, /2)     14 -> 7
    flatten (16 x 7 x 7 = 784) -> Dropout(0.5) -> Linear(784 -> 1024) -> ReLU
    -> Dropout(0.5) -> Linear(1024 -> K)

The paper describes something larger: two separate streams, one for u and one for v, each with two
5x5 convolutions and max-pooling, their features concatenated and passed through two fully connected
layers of 1024 units. Adaptive DSTNet (papers/adaptive-dstnet.txt, Table 9) lists Off-ApexNet at
2.77M parameters for 28 x 28 x 2 input. meb folds the two streams into one 2-channel stream with 3x3
kernels and a single FC-1024 layer; we follow meb, the only version whose every layer is pinned
down (docs/deviations.md, "Off-ApexNet").

Flatten order is (H, W, C) (NHWC); PyTorch flattens (C, H, W). `mer_jax.convert.torch_weights`
permutes the rows of `fc1` when it loads meb weights.

Size (trainable parameters): conv1 114, conv2 880, fc1 803,840, fc 1024 K + K
= 804,834 + 1025 K, i.e. 807,909 for K = 3. Dense multiply-adds at 28 x 28: convs 84,672 + 169,344,
fc1 802,816, fc 1024 K (1,059,904 for K = 3, 2.12M FLOPs); `complexity.flops_per_sample` counts
2.10M FLOPs (XLA, K = 3).

Dropout needs a PRNG key in training: `model(inputs, train=True, dropout_key=key)` (a call argument,
not model state, so the functional trainer's (Param, BatchStat) split stays complete).
"""
from __future__ import annotations

import jax
from flax import nnx

from mer_jax.models.layers import conv, dropout_keys, linear

HIDDEN_FEATURES = 1024  # meb: fc1 = Linear(7 ** 2 * 16, 1024); the paper's FC width
DROPOUT_RATE = 0.5      # meb default `dropout=0.5`


class OffApexNet(nnx.Module):
    """Off-ApexNet as meb builds it (see the module docstring); NHWC, logits out.

    `inputs["flow"]`: [B, S, S, C] with C >= 2; channels 0 and 1 (u, v) are used, any further
    channel (strain) is ignored. S = `input_size` (meb and the paper: 28). No BatchNorm, so `train`
    only switches dropout on. Attribute names match meb's state_dict keys (conv1, conv2, fc1, fc).
    """

    INPUTS = ("flow",)

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs, input_size: int = 28,
                 dropout_rate: float = DROPOUT_RATE):
        if input_size < 4:
            raise ValueError(f"OffApexNet input_size must be at least 4 (two 2x2 max-pools), got {input_size}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"OffApexNet dropout_rate must be in [0, 1), got {dropout_rate}")
        self.input_size = input_size
        self.pooled_size = input_size // 4  # two floor-halvings, as PyTorch's MaxPool2d(2) does
        self.dropout_rate = dropout_rate
        self.conv1 = conv(2, 6, 3, padding=1, rngs=rngs)
        self.conv2 = conv(6, 16, 3, padding=1, rngs=rngs)
        self.fc1 = linear(16 * self.pooled_size ** 2, HIDDEN_FEATURES, rngs=rngs)
        self.fc = linear(HIDDEN_FEATURES, num_classes, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate)  # no rngs: the key comes with each training call

    def __call__(self, inputs: dict[str, jax.Array], *, train: bool,
                 dropout_key: jax.Array | None = None) -> jax.Array:
        x = inputs["flow"]
        if x.ndim != 4 or tuple(x.shape[1:3]) != (self.input_size,) * 2 or x.shape[3] < 2:
            raise ValueError(f"OffApexNet inputs['flow'] must be [B, {self.input_size}, {self.input_size}, C>=2] "
                             f"(u, v first), got {list(x.shape)}")
        use_dropout, keys = dropout_keys("OffApexNet", train=train, rate=self.dropout_rate, key=dropout_key, count=2)
        y = x[..., :2]
        y = nnx.max_pool(jax.nn.relu(self.conv1(y)), (2, 2), strides=(2, 2))
        y = nnx.max_pool(jax.nn.relu(self.conv2(y)), (2, 2), strides=(2, 2))
        y = self.dropout(y.reshape(y.shape[0], -1), deterministic=not use_dropout, rngs=keys[0])
        y = jax.nn.relu(self.fc1(y))
        y = self.dropout(y, deterministic=not use_dropout, rngs=keys[1])
        return self.fc(y)
