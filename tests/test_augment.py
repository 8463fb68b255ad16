"""On-device augmentation: variants (M3ENet) and online (EDMDBN) modes, shifts, clips with a time axis."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.data.augment import AugmentConfig, augment_batch

KEY = jax.random.key(3)


def _maps(batch=6, side=12, frames=None, channels=3):
    shape = (batch,) + ((frames,) if frames else ()) + (side, side, channels)
    return jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)


def test_variant_zero_is_the_sample_itself():
    x = _maps()
    ids, variants = jnp.arange(6), jnp.array([0, 1, 0, 2, 0, 1])
    out = augment_batch({"x": x}, ids, variants, KEY, AugmentConfig(variants=3))["x"]
    for b in range(6):
        assert np.array_equal(out[b], x[b]) == (int(variants[b]) == 0)


def test_flip_mirrors_the_grid_and_negates_u():
    flow = _maps()
    config = AugmentConfig(variants=2, flip=True, max_rotation_deg=0.0, max_noise=0.0)
    out = augment_batch({"flow": flow}, jnp.arange(6), jnp.ones(6, int), KEY, config, flow_keys=("flow",))["flow"]
    flipped = [not np.allclose(out[b], flow[b]) for b in range(6)]
    assert any(flipped) and not all(flipped)
    for b in np.flatnonzero(flipped):
        mirrored = np.asarray(flow[b, :, ::-1])
        np.testing.assert_allclose(out[b], np.stack([-mirrored[..., 0], mirrored[..., 1], mirrored[..., 2]], -1),
                                   atol=1e-5)


def test_shifts_are_edge_padded_random_crops():
    """torchvision RandomCrop(size, padding=4, padding_mode='edge'): every output is the input padded by
    edge values and cropped at an integer offset within +-4."""
    x = _maps(batch=8)
    config = AugmentConfig(variants=1, online=True, flip=False, max_rotation_deg=0.0, max_noise=0.0, max_shift_px=4)
    out = np.asarray(augment_batch({"x": x}, jnp.arange(8), jnp.zeros(8, int), KEY, config, step=0)["x"])
    offsets = []
    for b in range(8):
        padded = np.pad(np.asarray(x[b]), ((4, 4), (4, 4), (0, 0)), mode="edge")
        matches = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                   if np.allclose(padded[4 + dy:16 + dy, 4 + dx:16 + dx], out[b], atol=1e-5)]
        assert matches, f"sample {b} is no edge-padded crop"
        offsets.append(matches[0])
    assert len(set(offsets)) > 1


def test_every_frame_of_a_clip_gets_the_same_transform():
    clip = _maps(batch=4, frames=3)
    config = AugmentConfig(variants=1, online=True, max_rotation_deg=4.0, max_noise=0.0, max_shift_px=4)
    whole = augment_batch({"clip": clip}, jnp.arange(4), jnp.zeros(4, int), KEY, config, step=5)["clip"]
    for t in range(3):
        frame = augment_batch({"clip": clip[:, t]}, jnp.arange(4), jnp.zeros(4, int), KEY, config, step=5)["clip"]
        np.testing.assert_allclose(whole[:, t], frame, atol=1e-5)


def test_vectors_pass_unchanged_next_to_augmented_clips():
    clip, au = _maps(batch=4, frames=2), jnp.asarray(np.random.default_rng(1).integers(0, 2, (4, 18)), jnp.float32)
    config = AugmentConfig(variants=1, online=True, max_rotation_deg=4.0, max_noise=0.1, max_shift_px=4)
    out = augment_batch({"texture": clip, "au": au}, jnp.arange(4), jnp.zeros(4, int), KEY, config, step=1)
    np.testing.assert_array_equal(out["au"], au)
    assert not np.allclose(out["texture"], clip)


def test_online_transforms_change_with_the_step_and_the_position():
    x = jnp.broadcast_to(_maps(batch=1), (2, 12, 12, 3))
    config = AugmentConfig(variants=1, online=True, max_rotation_deg=4.0, max_noise=0.0, max_shift_px=4)
    run = lambda step: np.asarray(augment_batch({"x": x}, jnp.zeros(2, int), jnp.zeros(2, int), KEY, config,
                                                step=step)["x"])
    first, again, later = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, later)
    assert not np.allclose(first[0], first[1])   # the same sample twice in a batch: two transforms


def test_online_mode_needs_one_variant():
    with pytest.raises(ValueError, match="variants = 1"):
        AugmentConfig(variants=5, online=True)
