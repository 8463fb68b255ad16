"""train.fold_chunk = 'auto': chunks sized from the memory estimate, and the estimate itself."""
import types

import jax
import numpy as np
import pytest

import jaxpr_testing
from configs import ststnet
from mer_jax.data import folds
from mer_jax.models.ststnet import STSTNet
from mer_jax.train import fold_memory, trainer

NUM_SUBJECTS, PER_SUBJECT, SIDE = 5, 4, 28


def _run(fold_devices=1, **train):
    config = ststnet.get_config()
    config.mesh.fold_devices = fold_devices
    config.train.update(batch_size=8, eval_batch_size=8, progress=False, **train)
    n = NUM_SUBJECTS * PER_SUBJECT
    rng = np.random.default_rng(0)
    data = {"flow": rng.normal(size=(n, SIDE, SIDE, 3)).astype(np.float32), "label": rng.integers(0, 3, n)}
    plan = folds.loso(np.repeat([f"s{i}" for i in range(NUM_SUBJECTS)], PER_SUBJECT))
    return trainer._Run(config=config, workdir=None, data=data, plan=plan,
                        make_model=lambda rngs: STSTNet(3, rngs=rngs), input_keys=("flow",), flow_keys=("flow",),
                        num_classes=3, score_fn=None)


def _fake_free(monkeypatch, free_bytes):
    monkeypatch.setattr(fold_memory, "free_device_bytes", lambda devices: free_bytes)


def test_auto_chunks_hold_as_many_folds_as_the_free_memory(monkeypatch):
    estimate = _run(fold_chunk=1)._fold_memory(1)
    assert estimate.per_fold > fold_memory.tree_bytes(_run(fold_chunk=1).fold_state) > 0
    # Room for exactly two folds at memory_fraction 0.5.
    _fake_free(monkeypatch, int((estimate.fixed + 2.5 * estimate.per_fold) / 0.5))
    run = _run(fold_chunk="auto", memory_fraction=0.5)
    assert run.chunk_size == 2
    assert run.chunks == [[0, 1], [2, 3], [4]]
    # Two fold devices: two folds on each.
    assert _run(fold_devices=2, fold_chunk="auto", memory_fraction=0.5).chunks == [[0, 1, 2, 3], [4]]
    _fake_free(monkeypatch, 10**12)
    assert _run(fold_chunk="auto").chunks == [list(range(NUM_SUBJECTS))]


def test_auto_refuses_when_one_fold_does_not_fit(monkeypatch):
    _fake_free(monkeypatch, 1000)
    with pytest.raises(MemoryError, match="does not fit"):
        _run(fold_chunk="auto")


def test_the_estimate_covers_a_chunk_of_several_folds():
    """XLA's own figure for 4 folds on one device is within 10% of the linear estimate from one fold
    (the fraction train.memory_fraction leaves free absorbs the rest)."""
    run = _run(fold_chunk=4)
    estimate = run._fold_memory(1)
    state = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct((4,) + s.shape[1:], s.dtype, sharding=sh),
                         run.fold_state, run.state_shardings)
    ids = jax.ShapeDtypeStruct((4, 8), np.int32, sharding=trainer.sharding.fold_batch_sharded(run.mesh))
    analysis = run.step_fn.lower(state, run.data, ids, ids, run.fold_values_shapes(4),
                                 run.aug_key).compile().memory_analysis()
    actual = analysis.temp_size_in_bytes + analysis.argument_size_in_bytes
    predicted = estimate.fixed + 4 * estimate.per_fold
    assert abs(actual - predicted) <= 0.1 * predicted, (actual, predicted)


@pytest.mark.parametrize("value", [-1, "all", 1.5, True])
def test_bad_fold_chunk_values_are_refused(value):
    with pytest.raises(ValueError, match="train.fold_chunk"):
        _run(fold_chunk=value)


def test_free_memory_from_device_stats_or_the_host():
    device = lambda stats: types.SimpleNamespace(memory_stats=lambda: stats)
    gpus = [device({"bytes_limit": 80, "bytes_in_use": 30}), device({"bytes_limit": 80, "bytes_in_use": 10})]
    assert fold_memory.free_device_bytes(gpus) == 50
    host = fold_memory.free_device_bytes([device(None), device(None)])
    assert 0 < host < fold_memory.free_device_bytes([device(None)])


@pytest.mark.parametrize("strategy,grouped", [("loop", False), ("grouped", True)])
def test_the_trainer_traces_its_steps_with_train_fold_conv(strategy, grouped):
    """The strategy travels with the jitted steps (fold_conv.traced_with), not with a caller's context."""
    run = _run(fold_chunk=2, fold_conv=strategy)
    state = jax.tree.map(lambda s: jax.ShapeDtypeStruct((2,) + s.shape[1:], s.dtype), run.fold_state)
    ids = jax.ShapeDtypeStruct((2, 8), np.int32)
    values = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype), run.fold_values_shapes(2))
    groups = jaxpr_testing.conv_groups(run.step_fn, state, run.data, ids, ids, values, run.aug_key)
    assert groups and (max(groups) > 1) == grouped

