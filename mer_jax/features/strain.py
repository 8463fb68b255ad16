"""Optical strain magnitude of a flow field (M3ENet paper section 3.1, eq. for epsilon).

The strain tensor is e_xx = du/dx, e_yy = dv/dy, e_xy = e_yx = (du/dy + dv/dx) / 2, and its
magnitude is the Frobenius norm sqrt(e_xx^2 + e_yy^2 + e_xy^2 + e_yx^2). Derivatives are central
differences (one-sided at the border), as `numpy.gradient`.
"""
from __future__ import annotations

import jax.numpy as jnp


def optical_strain(flow: jnp.ndarray) -> jnp.ndarray:
    """Strain magnitude [..., H, W] of flow [..., H, W, 2] (channels u, v); pure and jittable."""
    if flow.shape[-1] != 2:
        raise ValueError(f"flow must end in 2 channels (u, v), got shape {flow.shape}")
    u, v = flow[..., 0], flow[..., 1]
    u_y, u_x = jnp.gradient(u, axis=(-2, -1))
    v_y, v_x = jnp.gradient(v, axis=(-2, -1))
    shear = 0.5 * (u_y + v_x)
    return jnp.sqrt(u_x ** 2 + v_y ** 2 + 2.0 * shear ** 2)
