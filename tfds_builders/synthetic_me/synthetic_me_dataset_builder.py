"""TFDS builder of the synthetic micro-expression corpus (`mer_jax.data.synthetic`), one split per subject.

Builds without TensorFlow: frames and depth maps are handed to TFDS as PNG bytes (cv2.imencode), since
`tfds.features.Image` encodes numpy arrays with TensorFlow. Use `file_format='array_record'` and read
back with `tfds.data_source` / `builder.as_data_source()`.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import tensorflow_datasets as tfds

from mer_jax.data import schema
from mer_jax.data import synthetic
from mer_jax.data.synthetic import SyntheticConfig


@dataclasses.dataclass(eq=False)
class SyntheticMeConfig(tfds.core.BuilderConfig):
    """A builder config carrying the generator's `SyntheticConfig`."""
    synthetic: SyntheticConfig = synthetic.DEFAULT


class Builder(tfds.core.GeneratorBasedBuilder):
    """Procedural micro-expression clips with labels, AUs and depth (see README.md)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        SyntheticMeConfig(name="default", synthetic=synthetic.DEFAULT,
                          description="12 subjects x 12 clips, 128 x 128, 30 frames at 200 fps."),
        SyntheticMeConfig(name="smoke", synthetic=synthetic.SMOKE,
                          description="6 subjects x 10 clips, 64 x 64, 16 frames, clearer signal: for fast tests."),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(features=schema.features(with_depth=True))

    def _split_generators(self, dl_manager):
        del dl_manager  # generated, nothing to download
        config = self.builder_config.synthetic
        return {schema.subject_split_name(synthetic.subject_id(i)): self._generate_examples(i)
                for i in range(config.num_subjects)}

    def _generate_examples(self, subject_index: int):
        for sample in synthetic.generate_subject(self.builder_config.synthetic, subject_index):
            example = dict(sample)
            example["frames"] = [_png(frame[..., ::-1]) for frame in sample["frames"]]  # RGB -> BGR
            example["depth"] = [_png(depth) for depth in sample["depth"]]
            yield sample["clip"], example


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"cannot PNG-encode an image of shape {image.shape} and dtype {image.dtype}")
    return encoded.tobytes()
