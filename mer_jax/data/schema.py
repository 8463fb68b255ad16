"""The example schema every corpus builder shares (TFDS features), and its field names.

One example is one micro-expression clip:
  frames        PNG-encoded RGB frames [T, H, W, 3] (grey corpora are stored as three equal channels)
  onset, apex, offset   0-based indices into `frames`
  subject       globally unique subject id `dataset/subject` (e.g. `casme2/sub01`)
  dataset       corpus name (e.g. `casme2`); composite corpora keep each sample's source corpus
  clip          unique clip id `dataset/subject/clip`
  emotion       normalised emotion name from `taxonomy.EMOTIONS`
  label_3class  MEGC2019 3-class index (0 negative, 1 positive, 2 surprise), -1 if not in that protocol
  aus           multi-hot over `taxonomy.AU_VOCAB`
  fps           nominal frame rate of the recording
Split names are `subject_<dataset>_<subject>` (see `subject_split_name`), one per subject, so a LOSO
fold is plain split arithmetic.

Flow corpora (`flow_features`, e.g. the `precomputed_flow` builder: preprocessed inputs as researchers
share them) have the same fields except that `frames` is replaced by
  flow          one PNG-encoded 3-channel uint8 image per sample, the pixels of the shared flow image
                (u, v, optical strain as its channels), stored unchanged
and onset/apex/offset are frame numbers of the original recording when the source gives them, else -1
(there are no frames to index).
"""
from __future__ import annotations

import re

import numpy as np

from mer_jax.data import taxonomy

# How the `info.metadata['fixes']` entry of a clip begins when its corpus annotates no apex and the builder
# stored (onset + offset) // 2; apex spotting finds those clips by it (mer_jax/features/apex_spotting.py).
MISSING_APEX_FIX = "no apex annotated"

FIELDS = ("frames", "onset", "apex", "offset", "subject", "dataset", "clip", "emotion",
          "label_3class", "aus", "fps")
FLOW_FIELDS = ("flow",) + FIELDS[1:]


def features(with_depth: bool = False):
    """TFDS `FeaturesDict` of the shared schema; `with_depth` adds a uint16 depth map per frame."""
    import tensorflow_datasets as tfds  # the builders' dependency; the core never needs TFDS features

    spec = {
        "frames": tfds.features.Sequence(
            tfds.features.Image(shape=(None, None, 3), encoding_format="png")),
        **_annotation_spec(),
    }
    if with_depth:
        spec["depth"] = tfds.features.Sequence(
            tfds.features.Image(shape=(None, None, 1), dtype=np.uint16, encoding_format="png"))
    return tfds.features.FeaturesDict(spec)


def flow_features():
    """TFDS `FeaturesDict` of a flow corpus: the shared schema with `frames` replaced by `flow`, one
    PNG-encoded uint8 image [H, W, 3] per sample (u, v, strain as the image's channels)."""
    import tensorflow_datasets as tfds

    spec = {"flow": tfds.features.Image(shape=(None, None, 3), encoding_format="png"), **_annotation_spec()}
    return tfds.features.FeaturesDict(spec)


def _annotation_spec() -> dict:
    """Every field of the schema but the pixels."""
    import tensorflow_datasets as tfds

    return {
        "onset": np.int32,
        "apex": np.int32,
        "offset": np.int32,
        "subject": tfds.features.Text(),
        "dataset": tfds.features.Text(),
        "clip": tfds.features.Text(),
        "emotion": tfds.features.Text(),
        "label_3class": np.int32,
        "aus": tfds.features.Tensor(shape=(len(taxonomy.AU_VOCAB),), dtype=np.uint8),
        "fps": np.float32,
    }


def subject_split_name(subject: str) -> str:
    """TFDS split name of a `dataset/subject` id, e.g. `casme2/sub01` -> `subject_casme2_sub01`."""
    if subject.count("/") != 1:
        raise ValueError(f"subject id {subject!r} must look like 'dataset/subject'")
    name = "subject_" + re.sub(r"[^A-Za-z0-9_]", "_", subject.replace("/", "_"))
    return name
