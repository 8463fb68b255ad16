"""Optical strain (M3ENet Frobenius norm; DFR-Net Eq. 7) against analytic flows."""
import jax
import numpy as np
import pytest

from mer_jax.features.strain import optical_strain, optical_strain_dfrnet, strain

H, W = 9, 11


def _grid():
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    return x, y


def _linear_flow(a, b, c, d):
    """u = a x + b y, v = c x + d y: u_x = a, u_y = b, v_x = c, v_y = d everywhere."""
    x, y = _grid()
    return np.stack([a * x + b * y, c * x + d * y], -1).astype(np.float32)


LINEAR = [(0.3, -0.2, 0.5, 0.1), (0.0, -0.4, 0.4, 0.0), (-1.0, 0.25, 0.0, 2.0)]


def test_linear_flows_match_both_closed_forms_everywhere():
    coeffs = np.array(LINEAR, np.float32)
    flows = np.stack([_linear_flow(*c) for c in LINEAR])            # batched [3, H, W, 2]
    m3 = np.asarray(jax.jit(optical_strain)(flows))
    dfr = np.asarray(jax.jit(optical_strain_dfrnet)(flows))
    a, b, c, d = coeffs.T
    want_m3 = np.sqrt(a ** 2 + d ** 2 + 0.5 * (b + c) ** 2)         # Frobenius norm of the strain tensor
    want_dfr = np.sqrt(a ** 2 + d ** 2 + 0.5 * (b ** 2 + c ** 2))   # DFR-Net Eq. 7
    np.testing.assert_allclose(m3, np.broadcast_to(want_m3[:, None, None], m3.shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dfr, np.broadcast_to(want_dfr[:, None, None], dfr.shape), rtol=1e-5, atol=1e-6)


def test_rigid_rotation_has_no_m3enet_strain_but_dfrnet_strain_omega():
    omega = 0.4
    flow = _linear_flow(0.0, -omega, omega, 0.0)
    np.testing.assert_allclose(np.asarray(strain(flow, "m3enet")), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(strain(flow, "dfrnet")), omega, rtol=1e-5)


def test_quadratic_flow_uses_central_differences_in_the_interior():
    x, y = _grid()
    flow = np.stack([0.05 * x ** 2 + 0.1 * x * y, 0.02 * y ** 2], -1).astype(np.float32)
    u_x, u_y, v_x, v_y = 0.1 * x + 0.1 * y, 0.1 * x, 0.0 * x, 0.04 * y   # exact for central differences
    inner = (slice(1, -1), slice(1, -1))
    want_m3 = np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2)
    want_dfr = np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y ** 2 + v_x ** 2))
    np.testing.assert_allclose(np.asarray(optical_strain(flow))[inner], want_m3[inner], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(optical_strain_dfrnet(flow))[inner], want_dfr[inner], rtol=1e-5)


def test_selector_and_errors():
    flow = np.random.default_rng(0).normal(size=(H, W, 2)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(strain(flow)), np.asarray(optical_strain(flow)))
    np.testing.assert_array_equal(np.asarray(strain(flow, form="dfrnet")), np.asarray(optical_strain_dfrnet(flow)))
    with pytest.raises(ValueError, match="strain form"):
        strain(flow, "frobenius")
    with pytest.raises(ValueError, match="2 channels"):
        optical_strain_dfrnet(flow[..., :1])
