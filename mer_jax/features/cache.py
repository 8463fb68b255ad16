"""On-disk cache of computed features, keyed by corpus, builder version and feature config.

A cache entry is one `.npz` file holding every feature array plus the clip ids it was computed
for, so a stale or reordered corpus is detected instead of silently reused. Its name hashes the
corpus identity (name, builder version, content fingerprint: `Corpus.identity()`), the complete
feature config and `FORMAT_VERSION`, so a change to any of them computes a new entry.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from mer_jax.data import file_lock

log = logging.getLogger(__name__)

# Raise when a code change alters what cached features hold: every older entry is then recomputed.
# 2: keyframe_flow's flow implementation (`flow`) joined the config; the JAX TV-L1 became the default.
FORMAT_VERSION = 2

_CORPUS_FIELDS = ("name", "version", "fingerprint")


def default_cache_dir() -> Path:
    return Path(os.environ.get("MER_JAX_CACHE", Path.home() / ".cache" / "mer_jax")) / "features"


def cache_key(corpus_id: dict, feature_config: dict) -> str:
    """Stable hash of what the features depend on: the corpus identity (it must name the corpus, its
    builder version and a content fingerprint), the feature config and the cache format version."""
    missing = [f for f in _CORPUS_FIELDS if f not in corpus_id]
    if missing:
        raise ValueError(f"corpus identity {corpus_id} lacks {missing}; a feature cache key needs "
                         f"{list(_CORPUS_FIELDS)} (Corpus.identity())")
    blob = json.dumps({"format": FORMAT_VERSION, "corpus": corpus_id, "features": feature_config},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def entry_path(cache_dir: str | Path | None, key: str) -> Path:
    """Where the entry with `key` lives: under `cache_dir`, or `default_cache_dir()` when None."""
    return (default_cache_dir() if cache_dir is None else Path(cache_dir)) / f"{key}.npz"


def load(path: Path, clips: list[str]) -> dict[str, np.ndarray] | None:
    """The cached arrays at `path`, or None when absent; raises if it belongs to other clips."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        cached_clips = data["__clips__"].tolist()
        if cached_clips != list(clips):
            raise ValueError(f"feature cache {path} was computed for other clips than the corpus now "
                             f"holds ({len(cached_clips)} cached vs {len(clips)}); delete it to recompute")
        return {k: data[k] for k in data.files if k != "__clips__"}


def save(path: Path, arrays: dict[str, np.ndarray], clips: list[str]) -> None:
    """Write atomically (a temporary file of this process, then rename) so a killed run leaves no partial
    entry and two processes never write into the same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, __clips__=np.asarray(clips), **arrays)
    os.replace(tmp, path)


def load_or_compute(corpus, feature_config: dict, compute: Callable[[], dict[str, np.ndarray]],
                    cache_dir=None) -> dict[str, np.ndarray]:
    """The entry of `corpus` (a `Corpus`) and `feature_config`, computed by `compute()` and saved when
    absent. Concurrent processes compute it once (`file_lock`); the others wait and load it."""
    path = entry_path(cache_dir, cache_key(corpus.identity(), feature_config))
    clips = corpus.clip.tolist()
    with file_lock.exclusive(path, f"computing {feature_config.get('kind', 'features')} of {corpus.name}"):
        cached = load(path, clips)
        if cached is not None:
            log.info("features: loaded %s from cache %s", corpus.name, path)
            return cached
        arrays = compute()
        save(path, arrays, clips)
    return arrays
