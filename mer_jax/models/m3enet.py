"""M3ENet (Zhao, Liu and Yang, Sensors 2025): three flow streams and two fused grey-frame streams.

Built as the public code (xuanyv/M3ENet `Codes/network.py`) builds it, which differs from the paper's
figure and section 3.2 (docs/deviations.md, "M3ENet"):

- Flow streams u, v, strain (section 3.2.2), one each, not shared, 1-channel input:
  ResBlock(1->8, /2) -> ResBlock(8->32, /2) -> ResBlock(32->64, /2) -> flatten -> Linear(256).
  The paper's Conv3x3 stem before the ResBlocks (and the figure's Conv7x7 and 4 ResBlocks) are absent.
- Grey encoder (section 3.2.1), ONE set of weights applied to onset, apex and offset in turn:
  ResBlock(1->8, /2) -> ResBlock(8->32, /2) -> ResBlock(32->32, /2). The paper's Conv7x7 + Conv3x3
  stem is absent; frames are grey (1 channel), not RGB.
- Two fused streams, not shared: cat[onset, apex] and cat[offset, apex] along channels (64), each
  -> 3x ResBlock(64->64) -> flatten -> Linear(256) (the paper names one ResBlock per stream).
- Head (section 3.3): cat of the five 256-d vectors in the paper's order (rgb1, rgb2, u, v, strain)
  -> Linear(1024) + ReLU -> Linear(1024) + ReLU -> Linear(K). No dropout.

Flatten order is (H, W, C) (NHWC); PyTorch flattens (C, H, W). Training from scratch does not care;
loading PyTorch weights would need the rows of each 2304->256 kernel permuted.
The shared grey encoder is called once per frame, as in the reference, so in training mode each frame
is normalised with its own batch statistics and the running averages are updated three times per step.

Paper section 4.2.4, Table 4: 6.01M parameters, 142.87M FLOPs at 48x48. This module has
6,001,088 + 1025 K parameters (6.004M for K=3; any K >= 4 rounds to 6.01M) and 41.97M multiply-adds
(83.9M FLOPs dense, 73.5M as XLA counts them); the paper's FLOPs are not reproduced (docs/deviations.md).

Table 3 stream ablations are the constructor field `streams`:
- `"all"` (default): the full network, head input 5x256.
- `"flow"` ("w/o RGB input"): flow streams only, head input 3x256; reads only `inputs["flow"]`, so it
  also runs on flow corpora (precomputed flow images, e.g. 28 x 28 with `input_size=28`).
- `"rgb"` ("w/o optical flow input"): the two fused grey streams only, head input 2x256.
- `"single_rgb"` ("Single RGB input"): flow streams plus only the apex frame encoded, one fused stream
  (the onset one) reading cat[apex, apex], so the stream keeps its 64-channel shape; head input 4x256.
  The paper does not say how one frame enters the paired design; this is our reading. The other
  reading (apex in place of onset and offset, same network) needs no flag: feed the apex frame
  in all three `frames` channels.
`M3ENet.inputs_for(streams)` names the inputs each variant reads (registry.model_inputs).

`input_size` need not be a multiple of 8: each stride-2 3x3 pad-1 stage maps n to ceil(n / 2)
(48 -> 24 -> 12 -> 6, 28 -> 14 -> 7 -> 4), and the stream Linear layers read ceil(S / 8)^2 cells.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from mer_jax.models.layers import ResBlock, linear

STREAMS = ("all", "flow", "rgb", "single_rgb")
STREAM_FEATURES = 256   # reference code: every stream ends in Linear(2304 -> 256); section 3.2 only flattens
HIDDEN_FEATURES = 1024  # reference code: FC1 and FC2 widths (section 3.3 gives no width)


class _Stream(nnx.Module):
    """ResBlocks, then (if `cells`) flatten and Linear(cells x last width -> 256)."""

    def __init__(self, widths: tuple[int, ...], *, downsample: bool, cells: int | None, rngs: nnx.Rngs):
        self.blocks = nnx.List([ResBlock(i, o, downsample=downsample, rngs=rngs)
                                for i, o in zip(widths[:-1], widths[1:])])
        self.proj = linear(cells * widths[-1], STREAM_FEATURES, rngs=rngs) if cells else None

    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for block in self.blocks:
            x = block(x, train=train)
        return x if self.proj is None else self.proj(x.reshape(x.shape[0], -1))


class M3ENet(nnx.Module):
    """M3ENet as the public code builds it (see the module docstring); NHWC, logits out.

    `inputs["flow"]`: [B, S, S, 3] with channels (u, v, strain), TV-L1 onset -> apex (section 3.1).
    `inputs["frames"]`: [B, S, S, 3] with channels (onset, apex, offset), grey.
    S = `input_size` (paper section 4.1.4: 48); any positive size (cells = ceil(S / 8)^2).
    `streams` picks the Table 3 ablation (module docstring); only the inputs it needs are read.
    `train` picks batch statistics (True) or the running averages (False) in every BatchNorm.
    """

    INPUTS = ("flow", "frames")

    @staticmethod
    def inputs_for(streams: str = "all", **_) -> tuple[str, ...]:
        """The `inputs` keys the variant `streams` reads."""
        _check_streams(streams)
        return {"all": ("flow", "frames"), "flow": ("flow",), "rgb": ("frames",),
                "single_rgb": ("flow", "frames")}[streams]

    def __init__(self, num_classes: int, *, rngs: nnx.Rngs, streams: str = "all", input_size: int = 48):
        _check_streams(streams)
        if input_size <= 0:
            raise ValueError(f"M3ENet input_size must be positive, got {input_size}")
        use_flow, use_rgb, single_rgb = streams != "rgb", streams != "flow", streams == "single_rgb"
        self.streams = streams
        self.input_size = input_size
        side = input_size
        for _ in range(3):  # three stride-2 3x3 pad-1 stages: n -> ceil(n / 2)
            side = math.ceil(side / 2)
        cells = side ** 2  # 6 x 6 = 36 at 48 x 48, 4 x 4 = 16 at 28 x 28
        fused = lambda: _Stream((64, 64, 64, 64), downsample=False, cells=cells, rngs=rngs)
        self.grey_encoder = _Stream((1, 8, 32, 32), downsample=True, cells=None, rngs=rngs) if use_rgb else None
        self.onset_stream = fused() if use_rgb else None
        self.offset_stream = fused() if use_rgb and not single_rgb else None
        self.flow_streams = nnx.List([_Stream((1, 8, 32, 64), downsample=True, cells=cells, rngs=rngs)
                                      for _ in ("u", "v", "strain")]) if use_flow else None
        num_streams = ((1 if single_rgb else 2) if use_rgb else 0) + (3 if use_flow else 0)
        self.fc1 = linear(num_streams * STREAM_FEATURES, HIDDEN_FEATURES, rngs=rngs)
        self.fc2 = linear(HIDDEN_FEATURES, HIDDEN_FEATURES, rngs=rngs)
        self.fc_out = linear(HIDDEN_FEATURES, num_classes, rngs=rngs)

    def _input(self, inputs: dict[str, jax.Array], key: str) -> jax.Array:
        x = inputs[key]
        expected = (self.input_size, self.input_size, 3)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"M3ENet inputs[{key!r}] must be [B, {', '.join(map(str, expected))}], "
                             f"got {list(x.shape)}")
        return x

    def __call__(self, inputs: dict[str, jax.Array], *, train: bool) -> jax.Array:
        features = []
        if self.grey_encoder is not None:
            frames = self._input(inputs, "frames")
            encode = lambda i: self.grey_encoder(frames[..., i:i + 1], train=train)
            if self.offset_stream is None:  # single_rgb
                apex = encode(1)
                features.append(self.onset_stream(jnp.concatenate([apex, apex], -1), train=train))
            else:
                onset, apex, offset = encode(0), encode(1), encode(2)
                features.append(self.onset_stream(jnp.concatenate([onset, apex], -1), train=train))
                features.append(self.offset_stream(jnp.concatenate([offset, apex], -1), train=train))
        if self.flow_streams is not None:
            flow = self._input(inputs, "flow")
            features += [stream(flow[..., i:i + 1], train=train) for i, stream in enumerate(self.flow_streams)]
        h = jax.nn.relu(self.fc1(jnp.concatenate(features, -1)))
        h = jax.nn.relu(self.fc2(h))
        return self.fc_out(h)


def _check_streams(streams: str) -> None:
    if streams not in STREAMS:
        raise ValueError(f"M3ENet streams must be one of {STREAMS}, got {streams!r}")
