"""EDMDBN entire/detail motion against the jnp frame operations on fully decoded clips."""

import numpy as np
import pytest

from mer_jax.features import frame_ops, normalise
from mer_jax.features.host_frames import resize_square
from mer_jax.features.motion_differences import MotionDifferencesConfig, clip_motion, compute_motion_differences


class FakeCorpus:
    """Two clips of random RGB frames, 20 x 20, with onset / apex / offset inside each clip."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.name = "fake"
        self.videos = [rng.integers(0, 256, (14, 20, 20, 3), dtype=np.uint8),
                       rng.integers(0, 256, (5, 20, 20, 3), dtype=np.uint8)]
        self.clip = np.array(["a", "b"])
        self.onset, self.apex, self.offset = np.array([2, 0]), np.array([6, 3]), np.array([12, 4])
        self.decoded = []

    def __len__(self):
        return 2

    def frames(self, i, which):
        self.decoded.append(list(which))
        return self.videos[i][list(which)]

    def identity(self):
        return {"name": self.name, "version": "1", "fingerprint": "x"}


def _reference(corpus, i, config):
    """Whole onset..offset clip resized, standardised, resampled with frame_ops, then differenced."""
    video = np.stack([resize_square(f, config.size) for f in corpus.videos[i]]).astype(np.float32) / 255.0
    video = np.asarray(normalise.standardise(video, normalise.IMAGENET_MEAN, normalise.IMAGENET_STD))
    o, a, f = corpus.onset[i], corpus.apex[i], corpus.offset[i]
    if config.detail == "clip":
        resampled = frame_ops.interpolate_time(video[o:f + 1], config.num_frames + 1)
    else:
        resampled = frame_ops.interpolate_keyframes(video, np.array([o, a, f]), config.num_frames + 1)
    return video[a] - video[o], np.asarray(frame_ops.frame_difference(resampled))


@pytest.mark.parametrize("detail", ["clip", "keyframes"])
@pytest.mark.parametrize("i", [0, 1])
def test_matches_standardised_differences_of_the_resampled_clip(detail, i):
    corpus = FakeCorpus()
    config = MotionDifferencesConfig(size=16, num_frames=8, detail=detail)
    entire, detail_motion = clip_motion(corpus, i, config)
    ref_entire, ref_detail = _reference(corpus, i, config)
    assert entire.shape == (16, 16, 3) and detail_motion.shape == (8, 16, 16, 3)
    np.testing.assert_allclose(entire, ref_entire, atol=1e-5)
    np.testing.assert_allclose(detail_motion, ref_detail, atol=1e-5)


def test_keyframe_detail_is_the_public_codes_piecewise_motion():
    """[0, (A - O)/3 x3, (Off - A)/3 x3, 0] (reference-implementations.md section 1)."""
    corpus = FakeCorpus()
    config = MotionDifferencesConfig(size=16, detail="keyframes", normalise="none")
    entire, detail = clip_motion(corpus, 0, config)
    frames = {n: resize_square(corpus.videos[0][n], 16).astype(np.float32) / 255 for n in (2, 6, 12)}
    rise, fall = (frames[6] - frames[2]) / 3, (frames[12] - frames[6]) / 3
    expected = [np.zeros_like(rise)] + [rise] * 3 + [fall] * 3 + [np.zeros_like(rise)]
    np.testing.assert_allclose(detail, np.stack(expected), atol=1e-6)
    np.testing.assert_allclose(entire, frames[6] - frames[2], atol=1e-6)


def test_only_the_frames_read_are_decoded_and_results_are_cached(tmp_path):
    corpus = FakeCorpus()
    config = MotionDifferencesConfig(size=8, num_frames=2)
    first = compute_motion_differences(corpus, config, cache_dir=tmp_path, progress=False)
    assert all(len(which) <= 2 * 3 + 2 for which in corpus.decoded)
    calls = len(corpus.decoded)
    again = compute_motion_differences(corpus, config, cache_dir=tmp_path, progress=False)
    assert len(corpus.decoded) == calls
    for key in ("entire", "detail"):
        np.testing.assert_array_equal(first[key], again[key])
    assert first["detail"].shape == (2, 2, 8, 8, 3)


def test_bad_values_are_refused():
    corpus = FakeCorpus()
    corpus.apex = np.array([13, 3])
    with pytest.raises(ValueError, match="clip a has onset 2, apex 13"):
        clip_motion(corpus, 0, MotionDifferencesConfig(size=8))
    with pytest.raises(ValueError, match="features.detail"):
        MotionDifferencesConfig(detail="flow")
