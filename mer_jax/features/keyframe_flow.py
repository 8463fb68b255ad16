"""Key-frame motion inputs: onset->apex TV-L1 flow u, v, optical strain, grey onset/apex/offset, and
optionally the apex frame and |apex - onset|.

By default these are M3ENet's inputs (paper section 3.1: frames resized to H x W = 48 x 48, Dual TV-L1
flow between onset and apex, strain from the flow; section 3.2.1: onset, apex and offset frames).
DFR-Net's (paper section 3.1.2) are the same flow with the strain of its Eq. 7 (`strain="dfrnet"`), the
apex frame and the difference map |apex - onset| of Eq. 8 (`apex_difference="rgb"`).
The key frames are decoded once, turned grey and resized on the host; the flow is the JAX Dual TV-L1
(`tvl1_jax.tvl1_flow_batch`) run on the default device in fixed-size batches, with the strain
(`strain.strain`) computed there too, or OpenCV's DualTVL1 on the host one clip at a time
(`flow="opencv_tvl1"`). The JAX path takes the resized grey frames as float in [0, 1]; OpenCV's solver
needs uint8, so its path rounds them (docs/deviations.md). Computed once per corpus and feature config,
then cached on disk (`cache`).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from mer_jax.features import cache, strain
from mer_jax.features.flow_tvl1 import TVL1Params, tvl1_flow
from mer_jax.features.host_frames import resize_square
from mer_jax.features.tvl1_jax import tvl1_flow_batch


FLOWS = ("jax_tvl1", "opencv_tvl1")
APEX_DIFFERENCES = ("none", "rgb", "grey")


@dataclasses.dataclass(frozen=True)
class KeyframeFlowConfig:
    """size: side of every output map (paper: 48). flow_size: side the grey frames are resized to
    before the flow is computed (paper: the same 48; larger keeps more sub-pixel motion, and the
    flow is then resized to `size` with its vectors scaled accordingly). flow: `jax_tvl1` (on the
    device, batched) or `opencv_tvl1` (OpenCV on the host); both take `tvl1`. batch_size: pairs per
    device call of the JAX TV-L1 (the last batch is padded, so one compiled shape serves a corpus);
    each pair stops on its own, so it sets throughput and memory, not the flow (up to float round-off),
    and is not part of the cache key (`cache_fields`). strain: the strain channel's form, `m3enet`
    (M3ENet section 3.1) or `dfrnet` (DFR-Net Eq. 7; `strain.strain`). apex_difference: `none`, or also
    output the apex frame and |apex - onset| (DFR-Net section 3.1.2) in `rgb` (3 channels) or `grey` (1)."""
    size: int = 48
    flow_size: int = 48
    flow: str = "jax_tvl1"
    batch_size: int = 64
    tvl1: TVL1Params = TVL1Params()
    strain: str = "m3enet"
    apex_difference: str = "none"

    def __post_init__(self):
        if self.flow not in FLOWS:
            raise ValueError(f"features.flow must be one of {list(FLOWS)}, got {self.flow!r}")
        if self.strain not in strain.FORMS:
            raise ValueError(f"features.strain must be one of {list(strain.FORMS)}, got {self.strain!r}")
        if self.apex_difference not in APEX_DIFFERENCES:
            raise ValueError(f"features.apex_difference must be one of {list(APEX_DIFFERENCES)}, "
                             f"got {self.apex_difference!r}")
        if self.batch_size < 1:
            raise ValueError(f"features.batch_size must be at least 1, got {self.batch_size}")

    @classmethod
    def from_dict(cls, d: dict) -> "KeyframeFlowConfig":
        d = dict(d)
        return cls(tvl1=TVL1Params(**d.pop("tvl1", {})), **d)

    def cache_fields(self) -> dict:
        """Every field the features depend on (all but `batch_size`), for the cache key."""
        fields = dataclasses.asdict(self)
        del fields["batch_size"]
        return fields


def _keyframes(corpus, i: int, config: KeyframeFlowConfig) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(onset [F, F], apex [F, F]) grey at F = flow_size, and the frame inputs of clip i at S = size:
    'frames' (onset, apex, offset grey) [S, S, 3] and, unless `apex_difference` is 'none', 'apex'
    [S, S, c] and 'difference' = |apex - onset| [S, S, c] (c = 3 rgb, 1 grey) of the resized frames;
    all float32 in [0, 1]. The key frames are decoded once for all of them."""
    import cv2

    rgb = corpus.frames(i, (corpus.onset[i], corpus.apex[i], corpus.offset[i]))
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0 for f in rgb]
    onset, apex = (resize_square(g, config.flow_size) for g in grey[:2])
    inputs = {"frames": np.stack([resize_square(g, config.size) for g in grey], axis=-1)}
    if config.apex_difference != "none":
        if config.apex_difference == "rgb":
            onset_s, apex_s = (resize_square(f.astype(np.float32) / 255.0, config.size) for f in rgb[:2])
        else:
            onset_s, apex_s = inputs["frames"][..., 0:1], inputs["frames"][..., 1:2]
        inputs["apex"], inputs["difference"] = apex_s, np.abs(apex_s - onset_s)
    return onset, apex, inputs


@functools.partial(jax.jit, static_argnames=("size", "strain_form"))
def _flow_maps(flow: jax.Array, size: int, strain_form: str) -> jax.Array:
    """u, v, strain [B, size, size, 3] from flow [B, F, F, 2] in pixels of F x F frames: resized
    (linear, antialiased when shrinking) with its vectors scaled by size / F when F != size; the
    strain in `strain_form` (`strain.strain`) of the resized flow."""
    batch, side = flow.shape[:2]
    if side != size:
        flow = jax.image.resize(flow, (batch, size, size, 2), "linear") * (size / side)
    return jnp.concatenate([flow, strain.strain(flow, strain_form)[..., None]], axis=-1)


def _stack_inputs(clips: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The clips' frame inputs (`_keyframes`) stacked along a new first axis, key by key."""
    return {k: np.stack([clip[k] for clip in clips]) for k in clips[0]}


def _jax_tvl1_maps(corpus, config: KeyframeFlowConfig, progress: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(u, v, strain [N, S, S, 3], frame inputs of `_keyframes` [N, S, S, c]) with the flow on the device.

    Batches are padded with all-zero pairs (their flow converges at once) up to `batch_size`. Each
    batch is dispatched before the previous one is fetched, so the host decodes the next clips while
    the device computes; the progress bar counts fetched batches.
    """
    from tqdm.auto import tqdm

    size, count = config.batch_size, len(corpus)
    maps, keyframes, pending = [], [], None
    with tqdm(total=-(-count // size), desc=f"JAX TV-L1 flow {corpus.name}", unit="batch",
              disable=not progress) as bar:
        for start in range(0, count, size):
            clips = [_keyframes(corpus, i, config) for i in range(start, min(start + size, count))]
            onset, apex = (np.stack([clip[k] for clip in clips]) for k in (0, 1))
            pad = ((0, size - len(clips)), (0, 0), (0, 0))
            running = _flow_maps(tvl1_flow_batch(np.pad(onset, pad), np.pad(apex, pad), config.tvl1),
                                 config.size, config.strain)
            keyframes.extend(clip[2] for clip in clips)
            if pending is not None:
                maps.append(np.asarray(pending))
                bar.update()
            pending = running
        maps.append(np.asarray(pending))
        bar.update()
    return np.concatenate(maps)[:count], _stack_inputs(keyframes)


def _opencv_tvl1_maps(corpus, config: KeyframeFlowConfig, progress: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(u, v, strain [N, S, S, 3], frame inputs of `_keyframes` [N, S, S, c]) with OpenCV's flow, clip
    by clip."""
    from tqdm.auto import tqdm

    flows, keyframes = [], []
    for i in tqdm(range(len(corpus)), desc=f"OpenCV TV-L1 flow {corpus.name}", unit="clip",
                  disable=not progress):
        onset, apex, inputs = _keyframes(corpus, i, config)
        flow = tvl1_flow(onset, apex, config.tvl1)
        if config.flow_size != config.size:
            flow = resize_square(flow, config.size) * (config.size / config.flow_size)
        flows.append(flow)
        keyframes.append(inputs)
    flow = np.stack(flows).astype(np.float32)
    magnitude = np.asarray(jax.jit(strain.strain, static_argnames="form")(flow, form=config.strain))
    return np.concatenate([flow, magnitude[..., None]], axis=-1), _stack_inputs(keyframes)


def compute_keyframe_flow(corpus, config: KeyframeFlowConfig, cache_dir=None,
                          progress: bool = True) -> dict[str, np.ndarray]:
    """{'flow': [N, S, S, 3] (u, v, strain), 'frames': [N, S, S, 3] (onset, apex, offset grey)}, and
    unless `config.apex_difference` is 'none' 'apex' [N, S, S, c] and 'difference' [N, S, S, c]
    (|apex - onset| of the resized frames; c = 3 rgb, 1 grey).

    Flow is in pixels of the S x S maps; frames are in [0, 1]. Results are cached under
    `cache_dir` (default `~/.cache/mer_jax/features`, or $MER_JAX_CACHE) keyed by the corpus
    identity (name, builder version, content fingerprint) and `config.cache_fields()`.
    """
    if not len(corpus):
        raise ValueError(f"{corpus.name}: no clips to compute key-frame flow for")

    def compute():
        flow, inputs = (_jax_tvl1_maps if config.flow == "jax_tvl1" else _opencv_tvl1_maps)(corpus, config, progress)
        return {"flow": flow.astype(np.float32), **{k: v.astype(np.float32) for k, v in inputs.items()}}

    return cache.load_or_compute(corpus, {"kind": "keyframe_flow", **config.cache_fields()}, compute, cache_dir)
