"""Frame differences and linear temporal interpolation against numpy references."""
import jax
import numpy as np
import pytest

from mer_jax.features import frame_ops

rng = np.random.default_rng(0)


def _reference_interp(clip, num_frames, length, align_corners):
    """np.interp along time (axis 0 of clip [T, ...]) at PyTorch's linear sample positions."""
    i = np.arange(num_frames, dtype=np.float64)
    if align_corners:
        s = i * (length - 1) / max(num_frames - 1, 1)
    else:
        s = (i + 0.5) * length / num_frames - 0.5   # np.interp clamps outside [0, length - 1]
    flat = clip[:length].reshape(length, -1)
    out = np.stack([np.interp(s, np.arange(length), flat[:, k]) for k in range(flat.shape[1])], -1)
    return out.reshape((num_frames,) + clip.shape[1:])


def test_known_pytorch_linear_values():
    # F.interpolate(torch.tensor([[[1., 2.]]]), size=4, mode="linear", align_corners=False)
    clip = np.array([1.0, 2.0], np.float32).reshape(2, 1, 1)
    out = frame_ops.interpolate_time(clip, 4, time_axis=-3)
    np.testing.assert_allclose(np.asarray(out).ravel(), [1.0, 1.25, 1.75, 2.0], rtol=1e-6)
    out = frame_ops.interpolate_time(clip, 4, align_corners=True, time_axis=-3)
    np.testing.assert_allclose(np.asarray(out).ravel(), [1.0, 4 / 3, 5 / 3, 2.0], rtol=1e-6)


@pytest.mark.parametrize("align_corners", [False, True])
def test_interpolate_padded_batch_matches_np_interp(align_corners):
    lengths = np.array([5, 12, 1, 9])
    clips = rng.normal(size=(4, 12, 3, 4, 2)).astype(np.float32)   # [B, T, H, W, C], padded to 12
    clips[0, 5:] = 1e6                                               # padding must never be read
    fn = jax.jit(frame_ops.interpolate_time, static_argnums=1, static_argnames="align_corners")
    out = np.asarray(fn(clips, 7, length=lengths, align_corners=align_corners))
    for b, n in enumerate(lengths):
        want = _reference_interp(clips[b], 7, n, align_corners)
        np.testing.assert_allclose(out[b], want, rtol=1e-5, atol=1e-5)
    # without `length` the full clip is used; the same length out as in is the identity
    np.testing.assert_allclose(np.asarray(frame_ops.interpolate_time(clips[1], 12)), clips[1], rtol=1e-6)


def test_frame_difference_and_difference_to_frame_with_padding():
    clips = rng.normal(size=(2, 6, 3, 4)).astype(np.float32)        # grey [B, T, H, W]
    lengths = np.array([6, 4])
    diff = np.asarray(frame_ops.frame_difference(clips, length=lengths, time_axis=-3))
    np.testing.assert_allclose(diff[0], np.diff(clips[0], axis=0), rtol=1e-6)
    np.testing.assert_allclose(diff[1, :3], np.diff(clips[1, :4], axis=0), rtol=1e-6)
    assert np.all(diff[1, 3:] == 0)
    onset = np.array([0, 2])
    ref = np.asarray(frame_ops.difference_to_frame(clips, onset, length=lengths, time_axis=-3))
    np.testing.assert_allclose(ref[0], clips[0] - clips[0, 0], rtol=1e-6)
    np.testing.assert_allclose(ref[1, :4], clips[1, :4] - clips[1, 2], rtol=1e-6)
    assert np.all(ref[1, 4:] == 0)


def test_frame_pair_difference_entire_motion_and_dfrnet_abs():
    clips = rng.integers(0, 256, size=(3, 5, 4, 4, 3)).astype(np.uint8)
    onset, apex = np.array([0, 1, 2]), np.array([3, 4, 2])
    entire = np.asarray(frame_ops.frame_pair_difference(clips, onset, apex))
    absolute = np.asarray(frame_ops.frame_pair_difference(clips, onset, apex, absolute=True))
    for b in range(3):
        want = clips[b, apex[b]].astype(np.float32) - clips[b, onset[b]].astype(np.float32)
        np.testing.assert_array_equal(entire[b], want)
        np.testing.assert_array_equal(absolute[b], np.abs(want))


def test_edmdbn_keyframes_give_the_derived_detail_motion():
    # onset, apex, offset -> 9 frames (align_corners=False) -> 8 diffs [0, (A-O)/3 x3, (Off-A)/3 x3, 0]
    clip = rng.normal(size=(10, 2, 3, 3)).astype(np.float32)
    o, a, f = 1, 4, 8
    frames = frame_ops.interpolate_keyframes(clip, [o, a, f], 9)
    diffs = np.asarray(frame_ops.frame_difference(frames))
    zero = np.zeros_like(clip[0])
    want = [zero] + [(clip[a] - clip[o]) / 3] * 3 + [(clip[f] - clip[a]) / 3] * 3 + [zero]
    np.testing.assert_allclose(diffs, np.stack(want), atol=1e-5)
    np.testing.assert_allclose(np.asarray(frames)[[0, 4, 8]], clip[[o, a, f]], atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="time_axis"):
        frame_ops.frame_difference(np.zeros((3, 4, 4)), time_axis=-4)
    with pytest.raises(ValueError, match="num_frames"):
        frame_ops.interpolate_time(np.zeros((3, 4, 4, 1)), 0)
