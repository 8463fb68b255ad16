"""Adaptive DSTNet's inputs: the apex magnified at several factors and the MDOF to each (papers/
adaptive-dstnet.txt sections 3.2-3.3, 4.1).

For every clip and every factor alpha in `alphas` (section 4.1: 3 to 7):
    magnified_apex[n, a] = magnify(onset, apex, alpha_a)                  [S, S, 3] RGB in [0, 1]
    mdof[n, a]           = RAFT(onset -> magnified apex), as (u, v, |(u, v)|)   [S, S, 3], pixels
The onset and apex are the corpus's RGB key frames resized to S x S (`host_frames.resize_square`).
Keeping every factor lets the trainer balance classes with them (train.balance_per_class, the
paper's 150 samples per class) and run the adaptive factor loop (Algorithm 1) on stored versions.
The third MDOF channel is ours: DSTNet's TN reads a three-channel 256 x 256 image (Table 9) and the
paper does not say what the third channel holds; the flow magnitude is what its colour renderings
(Fig. 3) show as darkness.

The magnifier and RAFT are trained networks the caller supplies as a loader (experiment.py), called only
when the cache holds no entry; their weights are part of the cache key through `weights_id`. Both run on
the device in batches of `batch_size` clips.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from mer_jax.features import cache
from mer_jax.features.host_frames import resize_square
from mer_jax.features.magnify import magnify
from mer_jax.features.raft import raft_flow


@dataclasses.dataclass(frozen=True)
class DSTNetInputsConfig:
    """size: side S of the maps (paper: 256; RAFT needs a multiple of 8, at least 64). alphas: the
    magnification factors stored per clip. raft_updates: RAFT's recurrent updates (torchvision: 12).
    batch_size: clips per device call (throughput and memory only; not part of the cache key)."""
    size: int = 256
    alphas: tuple[float, ...] = (3.0, 4.0, 5.0, 6.0, 7.0)
    raft_updates: int = 12
    batch_size: int = 8

    def __post_init__(self):
        if self.size < 64 or self.size % 8:
            raise ValueError(f"features.size must be a multiple of 8 and at least 64 (RAFT), got {self.size}")
        if not self.alphas or any(a <= 0 for a in self.alphas):
            raise ValueError(f"features.alphas must be positive magnification factors, got {self.alphas}")
        steps = np.diff(self.alphas)
        if len(steps) and not (np.allclose(steps, steps[0]) and steps[0] > 0):
            raise ValueError(f"features.alphas must be increasing and evenly spaced (the adaptive loop steps "
                             f"through them), got {self.alphas}")
        if self.raft_updates < 1 or self.batch_size < 1:
            raise ValueError("features.raft_updates and features.batch_size must be at least 1")

    def cache_fields(self) -> dict:
        fields = dataclasses.asdict(self)
        del fields["batch_size"]
        return fields


def _key_frames(corpus, i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    onset, apex = corpus.frames(i, (corpus.onset[i], corpus.apex[i]))
    return resize_square(onset, size), resize_square(apex, size)


def _clip_batch(magnifier, raft, onset: np.ndarray, apex: np.ndarray, config: DSTNetInputsConfig):
    """(magnified [B, A, S, S, 3] in [0, 1], mdof [B, A, S, S, 3]) of uint8 key frames [B, S, S, 3]."""
    onset, apex = jnp.asarray(onset), jnp.asarray(apex)
    magnified, mdof = [], []
    for alpha in config.alphas:
        frame = magnify(magnifier, onset, apex, alpha)
        flow = raft_flow(raft, onset, frame, num_updates=config.raft_updates)
        magnified.append(frame.astype(jnp.float32) / 255.0)
        mdof.append(jnp.concatenate([flow, jnp.linalg.norm(flow, axis=-1, keepdims=True)], axis=-1))
    return np.asarray(jnp.stack(magnified, axis=1)), np.asarray(jnp.stack(mdof, axis=1))


def compute_dstnet_inputs(corpus, config: DSTNetInputsConfig, *, load_networks, weights_id: dict,
                          cache_dir=None, progress: bool = True) -> dict[str, np.ndarray]:
    """{'magnified_apex': [N, A, S, S, 3], 'mdof': [N, A, S, S, 3]} float32, A = len(config.alphas),
    cached under the corpus identity, `config.cache_fields()` and `weights_id` (what identifies the
    magnifier's and RAFT's weights). `load_networks()` -> (magnifier, RAFT) runs on a cache miss only."""
    if not len(corpus):
        raise ValueError(f"{corpus.name}: no clips to compute DSTNet inputs for")

    def compute():
        from tqdm.auto import tqdm

        magnifier, raft = load_networks()
        size, count = config.batch_size, len(corpus)
        magnified, mdof = [], []
        for start in tqdm(range(0, count, size), desc=f"magnified apex + MDOF {corpus.name}", unit="batch",
                          disable=not progress):
            frames = [_key_frames(corpus, i, config.size) for i in range(start, min(start + size, count))]
            onset, apex = (np.stack(f) for f in zip(*frames))
            pad = ((0, size - len(frames)), (0, 0), (0, 0), (0, 0))   # one compiled shape per corpus
            m, d = _clip_batch(magnifier, raft, np.pad(onset, pad), np.pad(apex, pad), config)
            magnified.append(m[:len(frames)])
            mdof.append(d[:len(frames)])
        return {"magnified_apex": np.concatenate(magnified).astype(np.float32),
                "mdof": np.concatenate(mdof).astype(np.float32)}

    key = {"kind": "dstnet_inputs", **config.cache_fields(), "weights": weights_id}
    return cache.load_or_compute(corpus, key, compute, cache_dir)
