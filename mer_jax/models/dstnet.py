"""DSTNet (Adaptive DSTNet; Liu, Zhou, Chen et al., Sensors 2025; papers/adaptive-dstnet.txt), Table 1.

No public code exists. Spatial network (SN) on inputs["magnified_apex"] [B, 256, 256, 3]:
    conv 3x3/2 pad 1 + BN + ReLU                       -> 128 x 128 x 64   (Conv 1)
    pool 2x2/2                                         ->  64 x  64 x 64   (Pooling 1)
    3 residual stages of 2 ResBlocks, the first /2     ->  32 x 32 x 64, 16 x 16 x 128, 8 x 8 x 256
    pool 3x3/2 pad 1                                   ->   4 x  4 x 256   (Pooling 2)
    flatten -> FC 4096 -> 500 + ReLU
Temporal network (TN) on inputs["mdof"] [B, 256, 256, C] (RAFT flow onset -> magnified apex, section 3.3):
    conv 5x5/2 + ReLU -> 126 x 126 x 16, pool 2x2/2 -> 63 x 63 x 16
    conv 3x3/1 + ReLU ->  61 x  61 x 16, pool       -> 30 x 30 x 16
    conv 3x3/1 + ReLU ->  28 x  28 x 16, pool       -> 14 x 14 x 16
    flatten -> FC 3136 -> 500 + ReLU
Feature fusion: concatenate the two 500-d vectors -> Linear(1000 -> K). Logits out; the softmax (the
top-1 confidence of section 3.4) belongs to the loss and to models/adaptive_alpha.py.

Choices where the paper is silent (constructor fields; docs/deviations.md, "Adaptive DSTNet network"):
- Padding: the one that reproduces Table 1's sizes. SN conv 1 and the residual convolutions pad 1
  (256 -> 128, stride-2 stages halve); Pooling 2 pads 1 (8 -> 4, PyTorch's (3, 2, 1)); every TN
  convolution and every 2x2 pool pads 0 (256 -> 126 -> 63 -> 61 -> 30 -> 28 -> 14, pools floor).
- `pooling` = "avg": section 3.4 names "the average pooling"; it is used for every pool (padded
  cells count as zeros, PyTorch's count_include_pad). "max" is the other reading.
- Residual blocks are ResNet basic blocks (layers.ResBlock: conv3x3 + BN + ReLU, conv3x3 + BN, conv1x1 +
  BN shortcut where the shape changes, ReLU after the sum); unlike ResNet-18 the first stage also
  halves the map, as Table 1's 64 -> 32 says. The SN stem has BN + ReLU (the ResNet stem); the TN is
  the "traditional convolutional structure" of section 4.3.7: ReLU, no BN.
- `fc_relu` = True: the FC layers "improve the model's nonlinear fitting performance" (section 3.4),
  so ReLU follows them; `dropout_rate` = 0.0 on the two 500-d vectors (the paper names no dropout).
- `fusion` = "concat" (Linear 1000 -> K) or "sum" (the two vectors added, Linear 500 -> K); section 3.4
  says only that the features "are fused".
- `flow_channels` = 3: Table 9 gives both inputs as 256 x 256 x 3 and section 3.4 counts its size
  "for three-channel 256 x 256 ME images", so the MDOF enters as a 3-channel image (Fig. 3 and 5 show
  it rendered in colour); what the three channels hold is the features' choice. 2 takes u, v only.
- Table 4's depth ablation: `spatial_stages` 2-4 residual stages (widths 64, 128, 256, 512, the 4th
  doubling as ResNet does; the paper gives no 4th width) and `temporal_layers` 3-5 conv + pool layers
  (conv 3x3/1, 16 channels); 3 and 3 are the paper's model. The FC input follows the last map.
- `streams` gives Table 2/5's single-stream rows: "spatial" (SN only, Linear 500 -> K) or "temporal"
  (TN only); only the inputs a variant reads are needed (`inputs_for`).
- Every convolution keeps PyTorch's default bias, also before BatchNorm (layers.conv).

Size (K classes, defaults, C = 3; biases and BN scale and shift counted):
  SN: conv 1 27 x 64 + 64 + BN 128 = 1,920; stage 1 78,400 + 74,112 = 152,512; stage 2 230,528 +
      295,680 = 526,208; stage 3 919,808 + 1,181,184 = 2,100,992; FC 4096 x 500 + 500 = 2,048,500;
      total 4,830,132.
  TN: conv 1 25 C x 16 + 16 = 1,216; conv 2 and conv 3 2,320 each; FC 3136 x 500 + 500 = 1,568,500;
      total 1,574,356 (1,573,956 with C = 2).
  fusion: 1000 K + K.  Total 6,404,488 + 1001 K = 6,407,491 for K = 3.
The paper (sections 3.4, 4.3.6, Table 9) gives 3.15M parameters and 64.77M FLOPs. Its Table 1 cannot
give 3.15M: the two FC layers alone hold 2,048,500 + 1,568,500 = 3,617,000, and the SN's residual
stages another 2,779,712. Without the FC layers the model has 2.79M. The only sum we found that lands
on 3.15M is two temporal networks (2 x 1,574,356 + 3,003 = 3.152M), not a reading of Table 1; we build
Table 1 as written, 2.03 times the paper's count.
Work at 256 x 256 (dense multiply-adds, padding included): SN 453,984,256 (conv 1 28.3M, stages
155.2M, 134.2M, 134.2M, FC 2.0M), TN 30,998,720 (19.1M, 8.6M, 1.8M, FC 1.6M), fusion 1000 K:
484,985,976 for K = 3, i.e. 0.97 GFLOPs dense; XLA counts 0.91 GFLOPs (complexity.flops_per_sample: it
skips the zero padding and adds the element-wise work). The paper's 64.77M FLOPs is 14 times less; the
closest reading is the TN alone (31.0M multiply-adds, 62.0M FLOPs dense; XLA counts 63.0M for
streams="temporal"), 3% below it, and the SN's first convolution alone already needs 56.6M FLOPs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mer_jax.models.layers import ResBlock, batch_norm, conv, dropout_keys, linear

STREAMS = ("both", "spatial", "temporal")   # Tables 2 and 5: DSTNet, SN only, TN only
FUSIONS = ("concat", "sum")
POOLINGS = ("avg", "max")
SPATIAL_WIDTHS = (64, 128, 256, 512)        # Table 1: 64, 128, 256; a 4th stage (Table 4) doubles
SPATIAL_STAGES = (2, 3, 4)                  # Table 4: two to four residual blocks in the SN
TEMPORAL_LAYERS = (3, 4, 5)                 # Table 4: three to five convolutional layers in the TN
TEMPORAL_FEATURES = 16                      # Table 1: every TN map has 16 channels
FEATURES = 500                              # Table 1: both FC layers end in 500


def _pool(x: jax.Array, kind: str, window: int, padding: int = 0) -> jax.Array:
    """window x window pooling with stride 2; avg counts padded cells as zeros (PyTorch's default)."""
    pads = ((padding, padding), (padding, padding))
    if kind == "avg":
        return nnx.avg_pool(x, (window, window), strides=(2, 2), padding=pads, count_include_pad=True)
    return nnx.max_pool(x, (window, window), strides=(2, 2), padding=pads)


class SpatialNetwork(nnx.Module):
    """Table 1 SN: conv 3x3/2 + BN + ReLU, pool 2x2/2, `stages` residual stages of `blocks_per_stage`
    ResBlocks (the first of each /2), pool 3x3/2 pad 1, FC -> 500 (+ ReLU if `fc_relu`)."""

    def __init__(self, channels: int, *, input_size: int, stages: int, blocks_per_stage: int, pooling: str,
                 fc_relu: bool, rngs: nnx.Rngs):
        self.pooling, self.fc_relu, self.blocks_per_stage = pooling, fc_relu, blocks_per_stage
        self.conv1 = conv(channels, SPATIAL_WIDTHS[0], 3, stride=2, padding=1, rngs=rngs)
        self.bn1 = batch_norm(SPATIAL_WIDTHS[0], rngs=rngs)
        blocks, width = [], SPATIAL_WIDTHS[0]
        for out in SPATIAL_WIDTHS[:stages]:
            for index in range(blocks_per_stage):
                blocks.append(ResBlock(width, out, downsample=index == 0, rngs=rngs))
                width = out
        self.blocks = nnx.List(blocks)
        self.fc = linear(spatial_sides(input_size, stages)[-1] ** 2 * width, FEATURES, rngs=rngs)

    def rows(self, x: jax.Array, *, train: bool) -> dict[str, jax.Array]:
        """The output of every Table 1 row, in order ("conv1", "pool1", "residual1", ..., "pool2", "fc")."""
        out = {"conv1": jax.nn.relu(self.bn1(self.conv1(x), use_running_average=not train))}
        x = out["pool1"] = _pool(out["conv1"], self.pooling, 2)
        for index, block in enumerate(self.blocks):
            x = block(x, train=train)
            if (index + 1) % self.blocks_per_stage == 0:
                out[f"residual{(index + 1) // self.blocks_per_stage}"] = x
        x = out["pool2"] = _pool(x, self.pooling, 3, padding=1)
        x = self.fc(x.reshape(x.shape[0], -1))
        out["fc"] = jax.nn.relu(x) if self.fc_relu else x
        return out


class TemporalNetwork(nnx.Module):
    """Table 1 TN: conv 5x5/2 + ReLU, pool 2x2/2, then (`layers` - 1) x (conv 3x3/1 + ReLU, pool 2x2/2),
    all 16 channels and unpadded, FC -> 500 (+ ReLU if `fc_relu`)."""

    def __init__(self, channels: int, *, input_size: int, layers: int, pooling: str, fc_relu: bool,
                 rngs: nnx.Rngs):
        self.pooling, self.fc_relu = pooling, fc_relu
        self.convs = nnx.List([conv(channels, TEMPORAL_FEATURES, 5, stride=2, rngs=rngs)]
                              + [conv(TEMPORAL_FEATURES, TEMPORAL_FEATURES, 3, rngs=rngs) for _ in range(layers - 1)])
        self.fc = linear(temporal_sides(input_size, layers)[-1] ** 2 * TEMPORAL_FEATURES, FEATURES, rngs=rngs)

    def rows(self, x: jax.Array, *, train: bool) -> dict[str, jax.Array]:
        """The output of every Table 1 row, in order ("conv1", "pool1", "conv2", ..., "fc"); no BatchNorm,
        so `train` changes nothing."""
        out = {}
        for index, layer in enumerate(self.convs, start=1):
            out[f"conv{index}"] = jax.nn.relu(layer(x))
            x = out[f"pool{index}"] = _pool(out[f"conv{index}"], self.pooling, 2)
        x = self.fc(x.reshape(x.shape[0], -1))
        out["fc"] = jax.nn.relu(x) if self.fc_relu else x
        return out


def spatial_sides(input_size: int, stages: int = 3) -> list[int]:
    """SN map sides after conv 1, pool 1, each stage and pool 2 (Table 1: 128, 64, 32, 16, 8, 4)."""
    sides = [(input_size - 1) // 2 + 1]             # conv 3x3/2 pad 1
    sides.append(sides[-1] // 2)                    # pool 2x2/2
    for _ in range(stages):
        sides.append((sides[-1] - 1) // 2 + 1)      # stage: conv 3x3/2 pad 1
    sides.append((sides[-1] - 1) // 2 + 1)          # pool 3x3/2 pad 1
    return sides


def temporal_sides(input_size: int, layers: int = 3) -> list[int]:
    """TN map sides after each conv and pool (Table 1: 126, 63, 61, 30, 28, 14)."""
    sides = [(input_size - 5) // 2 + 1]             # conv 5x5/2
    sides.append(sides[-1] // 2)
    for _ in range(layers - 1):
        sides.append(sides[-1] - 2)                 # conv 3x3/1
        sides.append(sides[-1] // 2)
    return sides


class DSTNet(nnx.Module):
    """DSTNet, Table 1 (module docstring); NHWC, logits out. `train` picks batch statistics (True) or the
    running averages (False) in the SN's BatchNorms and switches dropout on (then pass `dropout_key`)."""

    @staticmethod
    def inputs_for(streams: str = "both", **_) -> tuple[str, ...]:
        """The `inputs` keys the variant `streams` reads."""
        _check("streams", streams, STREAMS)
        return {"both": ("magnified_apex", "mdof"), "spatial": ("magnified_apex",), "temporal": ("mdof",)}[streams]

    @staticmethod
    def input_shapes(input_size: int = 256, image_channels: int = 3, flow_channels: int = 3, streams: str = "both",
                     **_) -> dict[str, tuple[int, ...]]:
        channels = {"magnified_apex": image_channels, "mdof": flow_channels}
        return {key: (input_size, input_size, channels[key]) for key in DSTNet.inputs_for(streams)}

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs, streams: str = "both", input_size: int = 256,
                 image_channels: int = 3, flow_channels: int = 3, fusion: str = "concat", pooling: str = "avg",
                 fc_relu: bool = True, dropout_rate: float = 0.0, spatial_stages: int = 3,
                 temporal_layers: int = 3, blocks_per_stage: int = 2):
        _check("streams", streams, STREAMS)
        _check("fusion", fusion, FUSIONS)
        _check("pooling", pooling, POOLINGS)
        _check("spatial_stages", spatial_stages, SPATIAL_STAGES)
        _check("temporal_layers", temporal_layers, TEMPORAL_LAYERS)
        if blocks_per_stage < 1:
            raise ValueError(f"DSTNet blocks_per_stage must be at least 1, got {blocks_per_stage}")
        if not 0.0 <= dropout_rate < 1.0:
            raise ValueError(f"DSTNet dropout_rate must be in [0, 1), got {dropout_rate}")
        if min(spatial_sides(input_size, spatial_stages) + temporal_sides(input_size, temporal_layers)) < 1:
            raise ValueError(f"DSTNet input_size {input_size} leaves an empty map after the SN's "
                             f"{spatial_stages} stages or the TN's {temporal_layers} layers")
        self.streams, self.fusion, self.dropout_rate = streams, fusion, dropout_rate
        self.expected = self.input_shapes(input_size, image_channels, flow_channels, streams)
        self.spatial = (SpatialNetwork(image_channels, input_size=input_size, stages=spatial_stages,
                                       blocks_per_stage=blocks_per_stage, pooling=pooling, fc_relu=fc_relu,
                                       rngs=rngs) if streams != "temporal" else None)
        self.temporal = (TemporalNetwork(flow_channels, input_size=input_size, layers=temporal_layers,
                                         pooling=pooling, fc_relu=fc_relu, rngs=rngs) if streams != "spatial" else None)
        fused = 2 * FEATURES if streams == "both" and fusion == "concat" else FEATURES
        self.head = linear(fused, num_classes, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate)   # no rngs: the key comes with each training call

    def _input(self, inputs: dict[str, jax.Array], key: str) -> jax.Array:
        expected = self.expected[key]
        if key not in inputs:
            raise KeyError(f"DSTNet needs inputs[{key!r}] [B, {', '.join(map(str, expected))}]")
        x = inputs[key]
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"DSTNet inputs[{key!r}] must be [B, {', '.join(map(str, expected))}], "
                             f"got {list(x.shape)}")
        return x

    def features(self, inputs: dict[str, jax.Array], *, train: bool) -> list[jax.Array]:
        """The 500-d FC outputs of the streams in use, SN first; every input is checked before any runs."""
        x = {key: self._input(inputs, key) for key in self.expected}
        streams = []
        if self.spatial is not None:
            streams.append(self.spatial.rows(x["magnified_apex"], train=train)["fc"])
        if self.temporal is not None:
            streams.append(self.temporal.rows(x["mdof"], train=train)["fc"])
        return streams

    def __call__(self, inputs: dict[str, jax.Array], *, train: bool,
                 dropout_key: jax.Array | None = None) -> jax.Array:
        features = self.features(inputs, train=train)
        use_dropout, keys = dropout_keys("DSTNet", train=train, rate=self.dropout_rate, key=dropout_key,
                                         count=len(features))
        features = [self.dropout(f, deterministic=not use_dropout, rngs=k) for f, k in zip(features, keys)]
        fused = jnp.concatenate(features, -1) if self.fusion == "concat" else sum(features)
        return self.head(fused)


def _check(field: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"DSTNet {field} must be one of {list(allowed)}, got {value!r}")
