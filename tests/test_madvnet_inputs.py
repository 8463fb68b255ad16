"""MADV-Net's texture clip, depth clip and AU vector (mer_jax/features/madvnet_inputs.py)."""
import numpy as np
import pytest

from mer_jax.features import frame_ops
from mer_jax.features.host_frames import resize_square
from mer_jax.features.madvnet_inputs import MADVNetInputsConfig, clip_inputs, compute_madvnet_inputs, inverse_depth
from test_motion_differences import FakeCorpus as FrameCorpus


class FakeCorpus(FrameCorpus):
    """test_motion_differences' two random clips, with depth maps (mm) and AU codings."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.distances = [rng.integers(400, 1500, (len(v), 20, 20, 1)).astype(np.uint16) for v in self.videos]
        self.aus = np.array([[1, 0, 1], [0, 1, 0]], np.uint8)

    def depth(self, i, which):
        return self.distances[i][list(which)]


@pytest.mark.parametrize("i", [0, 1])
def test_texture_and_depth_are_the_resampled_onset_to_offset_clip(i):
    corpus, config = FakeCorpus(), MADVNetInputsConfig(size=12, num_frames=6)
    texture, depth = clip_inputs(corpus, i, config)
    o, f = corpus.onset[i], corpus.offset[i]
    video = np.stack([resize_square(x, 12) for x in corpus.videos[i]]).astype(np.float32) / 255.0
    np.testing.assert_allclose(texture, frame_ops.interpolate_time(video[o:f + 1], 6), atol=1e-6)
    assert texture.shape == (6, 12, 12, 3) and depth.shape == (6, 12, 12, 1)
    # depth: 1 / distance over the frames read, scaled to [0, 1] over the clip, then resized and resampled
    read = sorted(set(corpus.decoded[-1]))
    inverse = inverse_depth(corpus.distances[i][read])
    maps = np.zeros((len(corpus.videos[i]), 12, 12, 1), np.float32)
    maps[read] = np.stack([resize_square(m[..., 0], 12)[..., None] for m in inverse])
    np.testing.assert_allclose(depth, frame_ops.interpolate_time(maps[o:f + 1], 6), atol=1e-6)
    assert 0.0 <= depth.min() and depth.max() <= 1.0


def test_inverse_depth_puts_near_at_one():
    np.testing.assert_allclose(inverse_depth(np.array([500.0, 1000.0, 250.0])), [1 / 3, 0.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(inverse_depth(np.full(3, 700.0)), np.zeros(3))


def test_sources_and_cache(tmp_path):
    corpus = FakeCorpus()
    stored = compute_madvnet_inputs(corpus, MADVNetInputsConfig(size=8, num_frames=4), cache_dir=tmp_path,
                                    progress=False)
    assert stored["texture"].shape == (2, 4, 8, 8, 3) and stored["depth"].shape == (2, 4, 8, 8, 1)
    np.testing.assert_array_equal(stored["au"], corpus.aus.astype(np.float32))
    decoded = len(corpus.decoded)
    again = compute_madvnet_inputs(corpus, MADVNetInputsConfig(size=8, num_frames=4), cache_dir=tmp_path,
                                   progress=False)
    assert len(corpus.decoded) == decoded and all(np.array_equal(stored[k], again[k]) for k in stored)
    # estimated depth: any affine map of inverse depth gives the same per-clip [0, 1] maps
    calls = []

    def estimate(frames):
        calls.append(len(frames))
        clip = next(i for i, v in enumerate(corpus.videos) if any(np.array_equal(frames[0], x) for x in v))
        read = [next(t for t, x in enumerate(corpus.videos[clip]) if np.array_equal(f, x)) for f in frames]
        return 3.0 / corpus.distances[clip][read].astype(np.float32) + 7.0

    estimated = compute_madvnet_inputs(corpus, MADVNetInputsConfig(size=8, num_frames=4, depth="depth_anything"),
                                       estimate_depth=estimate, weights_id="w", cache_dir=tmp_path, progress=False)
    assert calls and np.allclose(estimated["depth"], stored["depth"], atol=1e-3)   # float32 round-off of 7 + 3 / d
    off = compute_madvnet_inputs(corpus, MADVNetInputsConfig(size=8, num_frames=4, depth="none"), cache_dir=tmp_path,
                                 progress=False)
    assert set(off) == {"texture", "au"}
    with pytest.raises(ValueError, match="depth_weights"):
        compute_madvnet_inputs(corpus, MADVNetInputsConfig(depth="depth_anything"), cache_dir=tmp_path)


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="features.depth must be one of"):
        MADVNetInputsConfig(depth="midas")
    with pytest.raises(ValueError, match="multiple of 14"):
        MADVNetInputsConfig(depth_input_size=500)
    with pytest.raises(ValueError, match="num_frames"):
        MADVNetInputsConfig(num_frames=0)
