"""JAX Dual TV-L1: its building blocks, and accuracy next to OpenCV's DualTVL1 on pairs with known flow."""
import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.features import tvl1_jax
from mer_jax.features.flow_tvl1 import TVL1Params, tvl1_flow


def test_pyramid_follows_opencv_sizes():
    assert tvl1_jax.pyramid_shapes(64, 64, TVL1Params()) == [(64, 64), (51, 51), (41, 41), (33, 33), (26, 26)]
    assert tvl1_jax.pyramid_shapes(20, 40, TVL1Params()) == [(20, 40), (16, 32)]


def test_divergence_is_the_negative_adjoint_of_the_forward_gradient():
    rng = np.random.default_rng(0)
    u, p1, p2 = (jnp.asarray(rng.normal(size=(9, 11)), jnp.float32) for _ in range(3))
    p1 = p1.at[:, -1].set(0.0)   # dual variables vanish where the forward gradient is zero
    p2 = p2.at[-1, :].set(0.0)
    ux, uy = tvl1_jax._forward_gradient(u)
    assert float(jnp.sum(ux * p1 + uy * p2)) == pytest.approx(-float(jnp.sum(u * tvl1_jax._divergence(p1, p2))),
                                                             rel=1e-4)


def test_bicubic_warp_reproduces_integer_shifts_and_identity():
    image = jnp.asarray(np.random.default_rng(1).random((1, 12, 12)), jnp.float32)
    zero = jnp.zeros((12, 12))
    np.testing.assert_allclose(tvl1_jax._warp_bicubic(image, zero, zero), image, atol=1e-6)
    shifted = tvl1_jax._warp_bicubic(image, zero + 2.0, zero - 1.0)
    np.testing.assert_allclose(shifted[0, 1:, :-2], image[0, :-1, 2:], atol=1e-6)


def _scene(rng, size):
    image = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.5)
    return (image - image.min()) / (image.max() - image.min())


def _known_flow_pairs(size=64):
    """uint8 pairs whose second frame is the first moved by a known flow: translations, a rotation and
    smooth local (AU-like) bumps, 0.2 to 3 px, with sensor noise."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    bump = np.exp(-((xs - c * 0.8) ** 2 + (ys - c * 1.1) ** 2) / (2 * (size / 6) ** 2))
    fields = [(np.full_like(xs, 0.2), np.full_like(xs, -0.1)), (np.full_like(xs, 1.3), np.full_like(xs, 0.6)),
              (np.full_like(xs, -3.0), np.full_like(xs, 1.0)),
              (-(ys - c) * np.radians(2.0), (xs - c) * np.radians(2.0)),     # 2 degree rotation
              (0.5 * bump, -0.3 * bump), (3.0 * bump, 1.5 * bump)]
    firsts, seconds, flows = [], [], []
    for fx, fy in fields:
        first = _scene(rng, size)
        # second(x) = first(x - flow(x)): the flow carries first onto second
        map_x, map_y = (xs - fx).astype(np.float32), (ys - fy).astype(np.float32)
        second = cv2.remap(first, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        second = second + rng.normal(0, 0.01, second.shape).astype(np.float32)
        firsts.append(np.clip(np.rint(first * 255), 0, 255).astype(np.uint8))
        seconds.append(np.clip(np.rint(second * 255), 0, 255).astype(np.uint8))
        flows.append(np.stack([fx, fy], -1))
    return np.stack(firsts), np.stack(seconds), np.stack(flows)


def test_endpoint_error_no_worse_than_opencv():
    firsts, seconds, truth = _known_flow_pairs()
    ours = np.asarray(tvl1_jax.tvl1_flow_batch(jnp.asarray(firsts), jnp.asarray(seconds)))
    theirs = np.stack([tvl1_flow(a, b) for a, b in zip(firsts, seconds)])
    inner = (slice(None), slice(4, -4), slice(4, -4))   # both methods guess at the frame border
    epe = lambda flow: np.linalg.norm((flow - truth)[inner], axis=-1).mean(axis=(1, 2))
    ours_epe, theirs_epe = epe(ours), epe(theirs)
    assert ours_epe.mean() <= 1.1 * theirs_epe.mean(), (ours_epe, theirs_epe)
    assert np.all(ours_epe < 0.25), ours_epe


def test_gamma_is_refused():
    frames = jnp.zeros((1, 32, 32))
    with pytest.raises(ValueError, match="gamma must be 0"):
        tvl1_jax.tvl1_flow_batch(frames, frames, TVL1Params(gamma=0.1))
