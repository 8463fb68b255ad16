"""Input normalisations against numpy references."""
import jax
import numpy as np
import pytest

from mer_jax.features import normalise

rng = np.random.default_rng(0)


def test_min_max_per_sample_and_channel_like_meb():
    x = rng.normal(size=(3, 5, 6, 3)).astype(np.float32) * [1.0, 10.0, 0.1]
    x[1, ..., 2] = 4.0                                            # a constant channel maps to 0
    out = np.asarray(jax.jit(normalise.min_max)(x))
    low, high = x.min((1, 2), keepdims=True), x.max((1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = np.where(high > low, (x - low) / (high - low), 0.0)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.min((1, 2))[[0, 2]], 0.0)
    np.testing.assert_allclose(out.max((1, 2))[[0, 2]], 1.0, rtol=1e-6)
    grey = np.asarray(normalise.min_max(x[..., 0], axes=(-2, -1)))
    np.testing.assert_allclose(grey, out[..., 0], rtol=1e-5, atol=1e-6)


def test_rescale_ranges():
    x = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(np.asarray(normalise.rescale(x)), [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(normalise.rescale(x, dst=(-1.0, 1.0))), [-1.0, -0.6, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        normalise.rescale(x, src=(1.0, 1.0))


def test_imagenet_standardise():
    x = rng.integers(0, 256, size=(2, 4, 4, 3)).astype(np.uint8)
    out = np.asarray(normalise.standardise(normalise.rescale(x), normalise.IMAGENET_MEAN, normalise.IMAGENET_STD))
    want = (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_channel_mean_std_with_fold_masks():
    x = rng.normal(size=(6, 4, 5, 3)).astype(np.float32) * [1.0, 2.0, 3.0] + [0.0, 5.0, -1.0]
    mean, std = normalise.channel_mean_std(x)
    np.testing.assert_allclose(np.asarray(mean), x.mean((0, 1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(std), x.std((0, 1, 2)), rtol=1e-5)
    masks = np.array([[1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 1, 0]], np.float32)   # [F, N] training masks
    means, stds = jax.vmap(normalise.channel_mean_std, in_axes=(None, 0))(x, masks)
    for f, m in enumerate(masks.astype(bool)):
        np.testing.assert_allclose(np.asarray(means[f]), x[m].mean((0, 1, 2)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(stds[f]), x[m].std((0, 1, 2)), rtol=1e-5)
    z = np.asarray(normalise.standardise(x, mean, std))
    np.testing.assert_allclose(z.mean((0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std((0, 1, 2)), 1.0, rtol=1e-4)


def test_scale_flow_to_another_size():
    # u = 1 px, v = 2 px on a 48 x 64 image; the image resized to 24 x 128
    flow = np.broadcast_to(np.array([1.0, 2.0], np.float32), (48, 64, 2))
    out = np.asarray(normalise.scale_flow(flow, (48, 64), (24, 128)))
    np.testing.assert_allclose(out[..., 0], 2.0)   # u scaled by W'/W = 128/64
    np.testing.assert_allclose(out[..., 1], 1.0)   # v scaled by H'/H = 24/48
