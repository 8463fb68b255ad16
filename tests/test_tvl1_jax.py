"""JAX Dual TV-L1: its building blocks, and accuracy next to OpenCV's DualTVL1 on pairs with known flow."""
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.data.synthetic.flow_pairs import endpoint_error, known_flow_pairs
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


def test_bicubic_warp_matches_opencv_remap_with_repeated_border():
    import cv2

    rng = np.random.default_rng(1)
    image = rng.random((2, 14, 17)).astype(np.float32)
    u, v = (rng.normal(scale=4.0, size=(2, 14, 17)).astype(np.float32) for _ in range(2))
    u[0, 0, 0] = -40.0   # far outside the frame: the border value
    ours = np.asarray(tvl1_jax._warp_bicubic(jnp.asarray(image)[..., None], jnp.asarray(u), jnp.asarray(v)))
    ys, xs = np.mgrid[0:14, 0:17].astype(np.float32)
    for b in range(2):
        theirs = cv2.remap(image[b], xs + u[b], ys + v[b], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        # OpenCV rounds sample positions to 1/32 pixel; the taps and weights are otherwise the same
        np.testing.assert_allclose(ours[b, ..., 0], theirs, atol=0.03)
    zero = jnp.zeros((2, 14, 17))
    np.testing.assert_allclose(tvl1_jax._warp_bicubic(jnp.asarray(image)[..., None], zero + 2.0, zero - 1.0)[:, 1:, :-2, 0],
                               image[:, :-1, 2:], atol=1e-6)


@pytest.mark.parametrize("size", [3, 5])
def test_median_filter_equals_opencv_median_blur(size):
    import cv2

    flow = np.random.default_rng(size).normal(size=(3, 23, 19)).astype(np.float32)
    ours = np.asarray(tvl1_jax._median(jnp.asarray(flow), size))
    np.testing.assert_array_equal(ours, np.stack([cv2.medianBlur(f, size) for f in flow]))


@pytest.fixture(scope="module")
def pairs_and_flow():
    firsts, seconds, truth = known_flow_pairs()
    return firsts, seconds, truth, np.asarray(tvl1_jax.tvl1_flow_batch(jnp.asarray(firsts), jnp.asarray(seconds),
                                                                       pairs_per_step=1))


def test_each_pair_stops_on_its_own_whatever_the_grouping(pairs_and_flow):
    firsts, seconds, _, one_at_a_time = pairs_and_flow
    together = tvl1_jax.tvl1_flow_batch(jnp.asarray(firsts), jnp.asarray(seconds), pairs_per_step=len(firsts))
    # float sums in another order may flip a stopping test by one iteration somewhere, nothing more
    assert np.abs(together - one_at_a_time).mean(axis=(1, 2, 3)).max() < 5e-3
    np.testing.assert_allclose(np.median(np.abs(together - one_at_a_time)), 0.0, atol=1e-5)


def test_endpoint_error_no_worse_than_opencv(pairs_and_flow):
    firsts, seconds, truth, ours = pairs_and_flow
    theirs = np.stack([tvl1_flow(a, b) for a, b in zip(firsts, seconds)])
    ours_epe, theirs_epe = endpoint_error(ours, truth), endpoint_error(theirs, truth)
    assert ours_epe.mean() <= 1.1 * theirs_epe.mean(), (ours_epe, theirs_epe)
    assert np.all(ours_epe < 0.25), ours_epe


def test_unsupported_parameters_are_refused():
    frames = jnp.zeros((1, 32, 32))
    with pytest.raises(ValueError, match="gamma must be 0"):
        tvl1_jax.tvl1_flow_batch(frames, frames, TVL1Params(gamma=0.1))
    with pytest.raises(ValueError, match="median_filtering must be"):
        tvl1_jax.tvl1_flow_batch(frames, frames, TVL1Params(median_filtering=7))
