"""DFR-Net (DynamicFusionResNet; Li, Huang and Wu, CMC 2025; papers/dfr-net.txt). No public code exists.

    inputs["apex"]       [B, S, S, c]  apex frame (spatial branch, section 3.1.2)
    inputs["flow"]       [B, S, S, 3]  optical flow u, v and strain onset -> apex (temporal branch, Eq. 4-7)
    inputs["difference"] [B, S, S, c]  |apex - onset| (differential branch, Eq. 8)
      shallow extraction, one per branch: conv3x3 stride 1 + ReLU (section 3.2) -> F_s, F_t, F_d
      F_fused = ReLU(f2(ReLU(f1([F_s, F_d]))))                     (Eq. 9, Fig. 3)
      A = gate(g2(ReLU(g1([GAP(F_fused), GAP(F_t)]))))  [B, 1, 1, C_f]   (section 3.2, Fig. 4)
      F_final = F_fused * A                                        (Eq. 10)
      ResNet-18 stem and its first `num_layers` layers (section 3.3; Tables 8-9: 1-4, default 3), each
      residual block F_out = ReLU(x + SA(CA(BN(f2(ReLU(BN(f1(x))))))))   (Eq. 12)
        CA weights = sigmoid(f2(ReLU(f1(AvgPool(x) + MaxPool(x)))))   [B, 1, 1, C]    (Eq. 13)
        SA weights = sigmoid(f1([mean_c(x), max_c(x)]))               [B, H, W, 1]    (Eq. 14)
        CA(y) = y * CA weights, SA(y) = y * SA weights
      global average pool -> Linear(K)

Choices where the paper is silent (each a constructor field; docs/deviations.md, "DFR-Net"):
- `image_channels` = 3: the apex frame and the difference map are RGB (the paper never says grey);
  the flow input has 3 channels (V_m in R^{W x H x 3}, section 3.1.2).
- `input_size` = 112 (the paper gives none): at 112 the model needs 1.91 G multiply-adds per sample,
  about ResNet-18 at 224 (1.8 G), which fits the paper's 50-60 ms on a laptop CPU (sections 4.3, 4.4);
  at 224 it would need four times that. Any size >= 1 works (global pooling before the classifier).
- `shallow_features` = 32 per branch, `fused_features` = 64 (f1 and f2 are 3x3, stride 1, padding 1).
- `temporal_gate` = "relu": the paper obtains the attention weights A with "two convolutional layers
  and ReLU activation functions", the wording of Eq. 9 (ReLU after both), so A = ReLU(g2(ReLU(g1(.))))
  and is not squashed; "sigmoid" gives the SE-style reading A = sigmoid(g2(ReLU(g1(.)))).
  g1 and g2 are 1x1 convolutions, g1 maps C_f + C_s -> `temporal_hidden` (default C_f), g2 -> C_f.
- The ResNet is ResNet-18 (He et al. [11]; "standard ResNet"): stem conv7x7 /2 (C_f -> 64) + BN + ReLU
  + max-pool 3x3 /2, then layers of `blocks_per_layer` = 2 basic blocks with widths
  `widths` = (64, 128, 256, 512), the first block of layers 2-4 with stride 2 and a conv1x1 + BN
  shortcut. With 3 layers this is the "a little over 3 million" parameters of section 4.3, and the
  4th layer multiplies the count by 3.7 (Table 9: "several-fold").
- CA (Eq. 13) sums the average- and max-pooled vectors BEFORE its two 1x1 convolutions, as the
  equation says (CBAM sums after); reduction `ca_reduction` = 16 (C -> C/16 -> C). SA (Eq. 14) is one
  `sa_kernel` = 7 convolution over [mean, max] (channel order as written). CA then SA (Eq. 12, Fig. 5).
- Every convolution keeps PyTorch's default bias (layers.conv), also before BatchNorm, where
  torchvision's ResNet has none (+2,240 parameters for the default model).
- Head: global average pooling and one Linear layer, as ResNet; no dropout (the paper names none).
- `fusion` gives the Table 4 ablations. The paper "standardize[s] the dimensions of the three input
  feature maps" and then adds, multiplies or concatenates them; here the three shallow feature maps
  (C_s each) are added / multiplied element-wise / concatenated (3 C_s) and then pass through the
  same two-convolution fusion network f1, f2 (Eq. 9) to C_f channels; no temporal attention.
  "proposed" is Eq. 9-10.

Parameters (K classes, defaults; every convolution and the Linear layer with bias, BN scale and shift):
  shallow 3 x (27 x 32 + 32) = 2,688; f1 (64 -> 64, 3x3) and f2: 2 x 36,928 = 73,856;
  g1 (96 -> 64) 6,208 + g2 (64 -> 64) 4,160 = 10,368; stem 200,768 + 128 = 200,896;
  ResNet-18 layers 1-3 with conv biases: 148,224 + 526,208 + 2,100,992 = 2,775,424;
  attention, per block CA C^2/8 + C/16 + C and SA 2 x 49 + 1 = 99: 22,456 + 594 = 23,050;
  head 256 K + K.  Total 3,086,282 + 257 K = 3,087,053 for K = 3 ("a little over 3M", section 4.3).
  num_layers = 4: 11,550,931 for K = 3 (x3.7). Work at 112 x 112: 1.91 G multiply-adds dense
  (shallow 0.03 G, f1 + f2 0.92 G, stem 0.63 G, layers 0.32 G); XLA counts 3.7 GFLOPs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mer_jax.models.layers import ResBlock, batch_norm, conv, linear

INPUTS = ("apex", "flow", "difference")
MOTION_CHANNELS = 3   # u, v, strain: V_m in R^{W x H x 3} (section 3.1.2)
FUSIONS = ("proposed", "add", "multiply", "concat")   # Table 4
ATTENTIONS = ("both", "ca", "sa", "none")              # Tables 6-7
TEMPORAL_GATES = ("relu", "sigmoid")
MAX_LAYERS = 4                                         # Tables 8-9: 1 to 4 ResNet layers


class ChannelAttention(nnx.Module):
    """Eq. 13: sigmoid(f2(ReLU(f1(AvgPool(x) + MaxPool(x))))), f1: C -> C/r, f2: C/r -> C (1x1)."""

    def __init__(self, features: int, *, reduction: int, rngs: nnx.Rngs):
        hidden = max(features // reduction, 1)
        self.f1 = conv(features, hidden, 1, rngs=rngs)
        self.f2 = conv(hidden, features, 1, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Weights [B, 1, 1, C] of x [B, H, W, C]."""
        pooled = x.mean(axis=(1, 2), keepdims=True) + x.max(axis=(1, 2), keepdims=True)
        return jax.nn.sigmoid(self.f2(jax.nn.relu(self.f1(pooled))))


class SpatialAttention(nnx.Module):
    """Eq. 14: sigmoid(f1([mean over channels, max over channels])), f1: 2 -> 1, kernel k x k, same size."""

    def __init__(self, *, kernel: int, rngs: nnx.Rngs):
        if kernel % 2 != 1:
            raise ValueError(f"DFRNet sa_kernel must be odd (the map keeps its size), got {kernel}")
        self.f1 = conv(2, 1, kernel, padding=kernel // 2, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Weights [B, H, W, 1] of x [B, H, W, C]."""
        stats = jnp.concatenate([x.mean(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)], -1)
        return jax.nn.sigmoid(self.f1(stats))


class AttentionBlock(ResBlock):
    """Eq. 12 basic block: ReLU(shortcut(x) + SA(CA(BN(f2(ReLU(BN(f1(x)))))))), f1 and f2 conv3x3.

    f1 has stride 2 when `downsample`; the shortcut is conv1x1 (same stride) + BN when the block
    downsamples or changes the width, the identity otherwise (ResNet [11], option B; layers.ResBlock).
    """

    def __init__(self, in_features: int, out_features: int, *, downsample: bool, attention: str,
                 ca_reduction: int, sa_kernel: int, rngs: nnx.Rngs):
        super().__init__(in_features, out_features, downsample=downsample, rngs=rngs)
        self.channel_attention = (ChannelAttention(out_features, reduction=ca_reduction, rngs=rngs)
                                  if attention in ("ca", "both") else None)
        self.spatial_attention = (SpatialAttention(kernel=sa_kernel, rngs=rngs)
                                  if attention in ("sa", "both") else None)

    def refine(self, y: jax.Array) -> jax.Array:
        if self.channel_attention is not None:
            y = y * self.channel_attention(y)
        if self.spatial_attention is not None:
            y = y * self.spatial_attention(y)
        return y


class TemporalAttentionFusion(nnx.Module):
    """Section 3.2, Fig. 4, Eq. 10: F_final = F_fused * gate(g2(ReLU(g1([GAP(F_fused), GAP(F_t)]))))."""

    def __init__(self, fused_features: int, temporal_features: int, *, hidden: int, gate: str, rngs: nnx.Rngs):
        self.g1 = conv(fused_features + temporal_features, hidden, 1, rngs=rngs)
        self.g2 = conv(hidden, fused_features, 1, rngs=rngs)
        self.gate = gate

    def weights(self, fused: jax.Array, temporal: jax.Array) -> jax.Array:
        """Attention weights A [B, 1, 1, C_f]: adaptive average pooling to 1 x 1, concat, two 1x1 convs."""
        pooled = jnp.concatenate([fused.mean(axis=(1, 2), keepdims=True),
                                  temporal.mean(axis=(1, 2), keepdims=True)], -1)
        a = self.g2(jax.nn.relu(self.g1(pooled)))
        return jax.nn.sigmoid(a) if self.gate == "sigmoid" else jax.nn.relu(a)

    def __call__(self, fused: jax.Array, temporal: jax.Array) -> jax.Array:
        return fused * self.weights(fused, temporal)


class DFRNet(nnx.Module):
    """DFR-Net: three shallow branches, the multi-feature fusion, a channel-spatial attention ResNet
    (module docstring); NHWC, logits out. `train` picks batch statistics (True) or the running
    averages (False) in every BatchNorm."""

    @staticmethod
    def inputs_for(**_) -> tuple[str, ...]:
        """Every fusion variant reads all three inputs."""
        return INPUTS

    @staticmethod
    def input_shapes(input_size: int = 112, image_channels: int = 3, **_) -> dict[str, tuple[int, ...]]:
        s = input_size
        return {"apex": (s, s, image_channels), "flow": (s, s, MOTION_CHANNELS),
                "difference": (s, s, image_channels)}

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs, input_size: int = 112, num_layers: int = 3,
                 attention: str = "both", fusion: str = "proposed", image_channels: int = 3,
                 shallow_features: int = 32, fused_features: int = 64, temporal_hidden: int | None = None,
                 temporal_gate: str = "relu", widths=(64, 128, 256, 512), blocks_per_layer: int = 2,
                 ca_reduction: int = 16, sa_kernel: int = 7):
        _check("fusion", fusion, FUSIONS)
        _check("attention", attention, ATTENTIONS)
        _check("temporal_gate", temporal_gate, TEMPORAL_GATES)
        if not 1 <= num_layers <= min(MAX_LAYERS, len(widths)):
            raise ValueError(f"DFRNet num_layers must be in 1..{min(MAX_LAYERS, len(widths))} (Tables 8-9), "
                             f"got {num_layers}")
        if input_size < 1:
            raise ValueError(f"DFRNet input_size must be positive, got {input_size}")
        self.input_size, self.image_channels = input_size, image_channels
        self.fusion = fusion
        shallow = lambda channels: conv(channels, shallow_features, 3, padding=1, rngs=rngs)
        self.spatial_shallow = shallow(image_channels)
        self.temporal_shallow = shallow(MOTION_CHANNELS)
        self.difference_shallow = shallow(image_channels)
        fusion_in = {"proposed": 2, "concat": 3, "add": 1, "multiply": 1}[fusion] * shallow_features
        self.fusion_conv1 = conv(fusion_in, fused_features, 3, padding=1, rngs=rngs)
        self.fusion_conv2 = conv(fused_features, fused_features, 3, padding=1, rngs=rngs)
        self.temporal_attention = (TemporalAttentionFusion(
            fused_features, shallow_features, hidden=temporal_hidden or fused_features, gate=temporal_gate,
            rngs=rngs) if fusion == "proposed" else None)
        self.stem_conv = conv(fused_features, widths[0], 7, stride=2, padding=3, rngs=rngs)
        self.stem_bn = batch_norm(widths[0], rngs=rngs)
        blocks, in_features = [], widths[0]
        for layer, out_features in enumerate(widths[:num_layers]):
            for index in range(blocks_per_layer):
                blocks.append(AttentionBlock(in_features, out_features, downsample=layer > 0 and index == 0,
                                             attention=attention, ca_reduction=ca_reduction,
                                             sa_kernel=sa_kernel, rngs=rngs))
                in_features = out_features
        self.blocks = nnx.List(blocks)
        self.head = linear(in_features, num_classes, rngs=rngs)

    def _input(self, inputs: dict[str, jax.Array], key: str) -> jax.Array:
        x = inputs[key]
        expected = self.input_shapes(self.input_size, self.image_channels)[key]
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"DFRNet inputs[{key!r}] must be [B, {', '.join(map(str, expected))}], "
                             f"got {list(x.shape)}")
        return x

    def fuse(self, inputs: dict[str, jax.Array]) -> jax.Array:
        """The fused feature map [B, S, S, C_f] that enters the ResNet (section 3.2, or a Table 4 variant)."""
        spatial = jax.nn.relu(self.spatial_shallow(self._input(inputs, "apex")))
        temporal = jax.nn.relu(self.temporal_shallow(self._input(inputs, "flow")))
        difference = jax.nn.relu(self.difference_shallow(self._input(inputs, "difference")))
        if self.fusion == "proposed":
            x = jnp.concatenate([spatial, difference], -1)
        elif self.fusion == "concat":
            x = jnp.concatenate([spatial, temporal, difference], -1)
        elif self.fusion == "add":
            x = spatial + temporal + difference
        else:
            x = spatial * temporal * difference
        fused = jax.nn.relu(self.fusion_conv2(jax.nn.relu(self.fusion_conv1(x))))   # Eq. 9
        return fused if self.temporal_attention is None else self.temporal_attention(fused, temporal)

    def __call__(self, inputs: dict[str, jax.Array], *, train: bool) -> jax.Array:
        x = jax.nn.relu(self.stem_bn(self.stem_conv(self.fuse(inputs)), use_running_average=not train))
        x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))   # pads with -inf
        for block in self.blocks:
            x = block(x, train=train)
        return self.head(x.mean(axis=(1, 2)))


def _check(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"DFRNet {field} must be one of {list(allowed)}, got {value!r}")
