"""STSTNet (Liong, Gan, See, Khor and Huang, FG 2019): a shallow triple-stream CNN on optical flow.

Built exactly as the official PyTorch code builds it (christy1206/STSTNet `main.py`, class `STSTNet`;
the same network is meb's `STSTNet`, tvaranka/meb `meb/models/me_networks.py`):

    input [B, 28, 28, 3] = (u, v, optical strain) of the onset -> apex flow
      three parallel branches on the same input, with 3, 5 and 8 filters:
        Conv2d(3 -> c, 3x3, padding 2, bias)      28 -> 30
        ReLU -> BatchNorm2d(c)                    (ReLU before BN, as the code does)
        MaxPool2d(3, stride 3, padding 1)         30 -> 10 (padding is -inf, as PyTorch pads)
        Dropout(0.5)
      concat channels (3 + 5 + 8 = 16)
      AvgPool2d(2, stride 2)                      10 -> 5
      flatten (16 x 5 x 5 = 400) -> Linear(400 -> K)

The "three-dimensional" of the name is the 3-channel input, not a 3-D convolution. The three
branches share one MaxPool/Dropout definition in the code; here, as there, each branch draws its own
dropout mask.

Flatten order is (H, W, C) (NHWC); PyTorch flattens (C, H, W). `mer_jax.convert.torch_weights`
permutes the rows of `fc` when it loads the released PyTorch weights (docs/deviations.md, "STSTNet").

Size (trainable parameters, BatchNorm running statistics excluded):
  convs 84 + 140 + 224, BatchNorm scale + bias 2 x 16 = 32, fc 400 K + K
  = 480 + 401 K, i.e. 1683 for K = 3. Adaptive DSTNet (papers/adaptive-dstnet.txt, Table 9) lists
  STSTNet at 0.00167M parameters and 0.448M FLOPs at 28 x 28 x 3. Dense multiply-adds here: convs
  30 x 30 x 16 x 27 = 388,800 plus fc 400 K (390,000 for K = 3, 0.78M FLOPs);
  `complexity.flops_per_sample` counts 0.77M FLOPs (XLA, K = 3). Table 9's 0.448M matches neither.

Official training (main.py): Adam lr 5e-5, batch 256, 800 epochs, cross-entropy, no weight decay,
unshuffled DataLoader, the model after the last epoch is evaluated. Its inputs are 28 x 28 images
read with cv2.imread (BGR channel order, values 0..255, not normalised); see docs/deviations.md.

Dropout needs a PRNG key in training: `model(inputs, train=True, dropout_key=key)`. The key is a call
argument, not model state, so the functional trainer's (Param, BatchStat) split stays complete.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mer_jax.models.layers import batch_norm, conv, dropout_keys, linear

BRANCH_WIDTHS = (3, 5, 8)  # main.py: conv1, conv2, conv3 out_channels
DROPOUT_RATE = 0.5         # main.py: nn.Dropout(p=0.5)


def pooled_size(input_size: int) -> int:
    """Side of the map that is flattened: conv (pad 2) -> max-pool (3, /3, pad 1) -> avg-pool (2, /2)."""
    conv_out = input_size + 2
    max_out = (conv_out + 2 - 3) // 3 + 1
    return max_out // 2


class STSTNet(nnx.Module):
    """STSTNet as the official code builds it (see the module docstring); NHWC, logits out.

    `inputs["flow"]`: [B, S, S, 3] with channels (u, v, strain); S = `input_size` (official: 28).
    `train` picks batch statistics and dropout (True) or the running averages and no dropout (False).
    Attribute names match the PyTorch state_dict keys (conv1..3, bn1..3, fc).
    """

    INPUTS = ("flow",)

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs, input_size: int = 28,
                 dropout_rate: float = DROPOUT_RATE):
        side = pooled_size(input_size) if input_size > 0 else 0
        if side < 1:
            raise ValueError(f"STSTNet input_size must be at least 2 (one cell after pooling), got {input_size}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"STSTNet dropout_rate must be in [0, 1), got {dropout_rate}")
        self.input_size = input_size
        self.pooled_size = side
        self.dropout_rate = dropout_rate
        self.conv1, self.conv2, self.conv3 = (conv(3, c, 3, padding=2, rngs=rngs) for c in BRANCH_WIDTHS)
        self.bn1, self.bn2, self.bn3 = (batch_norm(c, rngs=rngs) for c in BRANCH_WIDTHS)
        self.dropout = nnx.Dropout(dropout_rate)  # no rngs: the key comes with each training call
        self.fc = linear(sum(BRANCH_WIDTHS) * side * side, num_classes, rngs=rngs)

    def __call__(self, inputs: dict[str, jax.Array], *, train: bool,
                 dropout_key: jax.Array | None = None) -> jax.Array:
        x = inputs["flow"]
        expected = (self.input_size, self.input_size, 3)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"STSTNet inputs['flow'] must be [B, {', '.join(map(str, expected))}], "
                             f"got {list(x.shape)}")
        use_dropout, keys = dropout_keys("STSTNet", train=train, rate=self.dropout_rate, key=dropout_key, count=3)
        branches = []
        for conv_layer, bn, key in zip((self.conv1, self.conv2, self.conv3), (self.bn1, self.bn2, self.bn3), keys):
            y = bn(jax.nn.relu(conv_layer(x)), use_running_average=not train)
            y = nnx.max_pool(y, (3, 3), strides=(3, 3), padding=((1, 1), (1, 1)))  # pads with -inf
            branches.append(self.dropout(y, deterministic=not use_dropout, rngs=key))
        y = nnx.avg_pool(jnp.concatenate(branches, -1), (2, 2), strides=(2, 2))
        return self.fc(y.reshape(y.shape[0], -1))
