"""On-disk cache of computed features, keyed by corpus, builder version and feature config.

A cache entry is one `.npz` file holding every feature array plus the clip ids it was computed
for, so a stale or reordered corpus is detected instead of silently reused.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    return Path(os.environ.get("MER_JAX_CACHE", Path.home() / ".cache" / "mer_jax")) / "features"


def cache_key(corpus_id: dict, feature_config: dict) -> str:
    """Stable hash of what the features depend on."""
    blob = json.dumps({"corpus": corpus_id, "features": feature_config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


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
    """Write atomically (temporary file, then rename) so a killed run leaves no partial entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, __clips__=np.asarray(clips), **arrays)
    os.replace(tmp, path)
