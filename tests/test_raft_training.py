"""RAFT training on synthetic pairs: the FlyingChairs-style generator (data/synthetic/flying_shapes.py),
RAFT checkpoints (features/raft.py save_raft / load_raft) and train/raft_training.py."""
import importlib.util
import json
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.data.synthetic.flow_pairs import endpoint_error
from mer_jax.data.synthetic.flying_shapes import FlyingShapesConfig, flying_shapes
from mer_jax.features import raft
from mer_jax.train import raft_training


def _backward_warp(image2, flow):
    """image2 sampled bilinearly at x + flow(x): image1 wherever the flow is right and the surface visible."""
    ys, xs = np.mgrid[0:flow.shape[0], 0:flow.shape[1]].astype(np.float32)
    return cv2.remap(image2, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR)


def test_flying_shapes_flow_carries_frame1_onto_frame2_on_visible_pixels():
    config = FlyingShapesConfig(height=64, width=72, displacement_px=(0.2, 12.0))
    image1, image2, flow, visible = flying_shapes(config, 6, seed=3, dtype="float32")
    assert image1.shape == image2.shape == (6, 64, 72, 3) and flow.shape == (6, 64, 72, 2)
    assert 0.4 < visible.mean() < 1.0       # occlusions and pixels leaving the frame, most pixels seen
    magnitude = np.linalg.norm(flow, axis=-1)
    assert magnitude.max() <= 12.0 * (1 + 0.3 + 0.3) + 1e-3 and magnitude.mean() > 0.5
    errors, shifted = [], []
    for a, b, f, v in zip(image1, image2, flow, visible):
        inner = cv2.erode(v.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # off the occlusion edges
        errors.append(np.abs(_backward_warp(b, f) - a)[inner])
        shifted.append(np.abs(_backward_warp(b, f + 0.5) - a)[inner])
    errors, shifted = np.concatenate(errors), np.concatenate(shifted)
    # What is left is bilinear interpolation of the (bicubically rendered) textures: ~1.5 grey levels.
    assert errors.mean() < 0.01 and np.percentile(errors, 99) < 0.05
    assert shifted.mean() > 2.5 * errors.mean()  # half a pixel off is clearly worse


def test_flying_shapes_zero_motion_gives_identical_frames_and_zero_flow():
    image1, image2, flow, visible = flying_shapes(FlyingShapesConfig(displacement_px=(0.0, 0.0)), 3, seed=0)
    assert image1.dtype == np.uint8 and np.array_equal(image1, image2)
    assert not flow.any() and visible.all()


def test_flying_shapes_is_seeded_and_checks_its_fields():
    config = FlyingShapesConfig(height=64, width=64)
    first, again = flying_shapes(config, 2, (7, 0, 1)), flying_shapes(config, 2, (7, 0, 1))
    other = flying_shapes(config, 2, (7, 0, 2))
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    for fields, name in ((dict(height=60), "height"), (dict(width=56), "width"),
                         (dict(displacement_px=(0.0, 2.0)), "displacement_px"),
                         (dict(num_objects=(3, 1)), "num_objects"), (dict(noise_std=-0.1), "noise_std")):
        with pytest.raises(ValueError, match=name):
            FlyingShapesConfig(**fields)
    with pytest.raises(ValueError, match="dtype"):
        flying_shapes(config, 1, 0, dtype="float64")


def test_sequence_loss_weights_later_updates_more():
    rng = np.random.default_rng(0)
    flows, truth = rng.normal(size=(3, 2, 4, 5, 2)), rng.normal(size=(2, 4, 5, 2))
    expected = sum(0.8 ** (2 - i) * np.abs(flows[i] - truth).mean() for i in range(3))
    loss = raft_training.sequence_loss(jnp.asarray(flows, jnp.float32), jnp.asarray(truth, jnp.float32), 0.8)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_one_cycle_is_torchs_linear_one_cycle():
    schedule = raft_training.one_cycle(4e-4, total_steps=1100, pct_start=0.05)  # warm-up 55 steps
    np.testing.assert_allclose([schedule(0), schedule(55), schedule(1100)], [4e-4 / 25, 4e-4, 4e-4 / 25 / 1e4],
                               rtol=1e-5)
    np.testing.assert_allclose(schedule(20), 4e-4 / 25 + 20 / 55 * (4e-4 - 4e-4 / 25), rtol=1e-5)


def test_save_raft_load_raft_round_trip(tmp_path):
    """raft_large (parameters and BatchNorm statistics) with random values in an abstract model (no random
    init, which compiles for tens of seconds), saved and restored: every array comes back."""
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: raft.RAFT("large", rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(0)
    model = nnx.merge(graphdef, jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), x.dtype), abstract))
    raft.save_raft(tmp_path / "checkpoint", model, "large")
    assert json.loads((tmp_path / "checkpoint" / "raft.json").read_text()) == {"variant": "large"}
    restored = raft.load_raft(tmp_path / "checkpoint")
    assert restored.variant == "large" and jax.tree.leaves(nnx.state(restored, nnx.BatchStat))
    saved, loaded = jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(restored))
    assert len(saved) == len(loaded) and all(np.array_equal(a, b) for a, b in zip(saved, loaded))
    with pytest.raises(ValueError, match="variant"):
        raft.save_raft(tmp_path / "other", model, "small")


def test_load_raft_names_what_a_checkpoint_holds(tmp_path):
    with pytest.raises(FileNotFoundError, match="raft.json and params"):
        raft.load_raft(tmp_path)


def _raft_config(variant):
    spec = importlib.util.spec_from_file_location("raft_config", Path(__file__).parents[1] / "configs" / "raft.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


@pytest.mark.slow
def test_pretrain_smoke_writes_a_checkpoint_and_both_epes(tmp_path):
    """configs/raft.py:smoke end to end (~2 min on 2 CPU cores: init, train-step and TV-L1 compiles)."""
    config = _raft_config("smoke")
    config.train.progress = False
    results = raft_training.pretrain(config, tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["steps"] == config.train.num_steps
    for part, pairs in (("flying_shapes", config.eval.num_pairs), ("known_flow_pairs", config.eval.known_pairs)):
        assert results[part]["pairs"] == pairs
        assert all(np.isfinite(results[part][f"{name}_epe"]) for name in ("raft", "tvl1", "zero"))
    # TV-L1 on the smooth known fields is sub-pixel (tests/test_tvl1_jax.py)
    assert results["known_flow_pairs"]["tvl1_epe"] < 0.5
    # The restored checkpoint gives the in-memory model's per-pair EPEs on the same held-out pairs.
    restored = raft.load_raft(tmp_path / "checkpoint")
    data = FlyingShapesConfig(**config.data.to_dict())
    image1, image2, flow, _ = flying_shapes(data, config.eval.num_pairs, (config.seed, 1))
    predicted = raft.raft_flow(restored, image1, image2, num_updates=config.eval.num_updates)
    np.testing.assert_allclose(endpoint_error(np.asarray(predicted), flow, config.eval.border),
                               results["flying_shapes"]["raft_epe_per_pair"], rtol=1e-6)
