"""Optical strain magnitude of a flow field, in the two forms the papers use.

With u = horizontal and v = vertical flow, x = column and y = row:
- M3ENet (paper section 3.1, strain tensor and its Frobenius norm): e_xx = du/dx, e_yy = dv/dy,
  e_xy = e_yx = (du/dy + dv/dx) / 2, magnitude sqrt(e_xx^2 + e_yy^2 + e_xy^2 + e_yx^2)
  = sqrt(u_x^2 + v_y^2 + (u_y + v_x)^2 / 2).
- DFR-Net (paper section 3.1.2, Eq. 7): V_z = sqrt(u_x^2 + v_y^2 + (u_y^2 + v_x^2) / 2); the shear
  derivatives are squared separately, so it lacks the M3ENet form's cross term u_y * v_x (a rigid
  rotation has zero M3ENet strain but DFR-Net strain |omega|). The paper text lost the radical; the
  square root is the reading of the strain *magnitude* it cites (Liong et al. [24]), see
  docs/deviations.md.

Neither paper names a derivative scheme; both forms use central differences, one-sided at the
border, as `numpy.gradient` (exact for linear flow everywhere, for quadratic flow in the interior).
"""
from __future__ import annotations

import jax.numpy as jnp

FORMS = ("m3enet", "dfrnet")


def _flow_gradients(flow: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """(u_x, u_y, v_x, v_y), each [..., H, W], of flow [..., H, W, 2]."""
    if flow.shape[-1] != 2:
        raise ValueError(f"flow must end in 2 channels (u, v), got shape {flow.shape}")
    u_y, u_x = jnp.gradient(flow[..., 0], axis=(-2, -1))
    v_y, v_x = jnp.gradient(flow[..., 1], axis=(-2, -1))
    return u_x, u_y, v_x, v_y


def optical_strain(flow: jnp.ndarray) -> jnp.ndarray:
    """M3ENet strain magnitude [..., H, W] of flow [..., H, W, 2] (channels u, v); pure and jittable."""
    u_x, u_y, v_x, v_y = _flow_gradients(flow)
    shear = 0.5 * (u_y + v_x)
    return jnp.sqrt(u_x ** 2 + v_y ** 2 + 2.0 * shear ** 2)


def optical_strain_dfrnet(flow: jnp.ndarray) -> jnp.ndarray:
    """DFR-Net Eq. 7 strain magnitude [..., H, W] of flow [..., H, W, 2] (channels u, v); jittable."""
    u_x, u_y, v_x, v_y = _flow_gradients(flow)
    return jnp.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y ** 2 + v_x ** 2))


def strain(flow: jnp.ndarray, form: str = "m3enet") -> jnp.ndarray:
    """Strain magnitude [..., H, W] of flow [..., H, W, 2] in `form` 'm3enet' or 'dfrnet' (static)."""
    if form == "m3enet":
        return optical_strain(flow)
    if form == "dfrnet":
        return optical_strain_dfrnet(flow)
    raise ValueError(f"strain form must be one of {FORMS}, got {form!r}")
