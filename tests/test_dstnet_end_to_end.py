"""Adaptive DSTNet end to end on the synthetic smoke corpus (configs/dstnet.py:smoke): the smoke-size
magnifier and RAFT small loaded from checkpoints, the apex magnified at 3 factors and RAFT's MDOF to each,
alpha balancing, DSTNet under LOSO with the adaptive loop (and, with -m slow, a fixed test factor).

The two networks' weights are their initialisations saved as checkpoints: training them costs minutes
of compiling on 2 CPU cores (tests/test_magnifier.py and tests/test_raft_training.py train them), and
these tests check the pipeline, not the magnification or the flow.
"""
import json

import numpy as np
import pytest

import jax
from flax import nnx

from configs import dstnet, magnifier
from mer_jax import experiment
from mer_jax.features.magnifier_net import MagnifierNet
from mer_jax.features.magnify import save_magnifier
from mer_jax.features.raft import init_raft, save_raft


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """(magnifier checkpoint, RAFT checkpoint, feature cache dir)."""
    root = tmp_path_factory.mktemp("dstnet_networks")
    fields = magnifier.get_config("smoke").magnifier.to_dict()
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: MagnifierNet(**fields, rngs=nnx.Rngs(0))))
    params = jax.jit(lambda: nnx.state(MagnifierNet(**fields, rngs=nnx.Rngs(0))))()   # one compile
    save_magnifier(root / "magnifier", nnx.merge(graphdef, params), fields)
    save_raft(root / "raft", init_raft("small", seed=0), "small")
    return str(root / "magnifier"), str(root / "raft"), str(root / "cache")


def _run(networks, data_dir, workdir, **train):
    config = dstnet.get_config("smoke")
    config.dataset.data_dir = data_dir
    config.features.magnifier, config.features.raft, config.features.cache_dir = networks
    config.train.progress = False
    config.train.update(train)
    return experiment.train_and_evaluate(config, workdir)


@pytest.mark.parametrize("threshold", [pytest.param(0.0, marks=pytest.mark.slow), 0.85],
                         ids=["fixed_alpha", "adaptive"])
def test_smoke_loso(networks, data_dir, tmp_path, threshold):
    results = _run(networks, data_dir, tmp_path, adaptive_threshold=threshold)
    assert results["model"] == "dstnet" and results["protocol"]["num_folds"] == 6
    assert 0.0 <= results["uf1"] <= 1.0 and 0.0 <= results["uar"] <= 1.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["train"]["adaptive_threshold"] == threshold
    assert saved["config"]["train"]["balance_per_class"] == 12
    probs = np.loadtxt(tmp_path / "predictions.csv", delimiter=",", skiprows=1,
                       usecols=range(6, 9))             # prob_negative, prob_positive, prob_surprise
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_missing_networks_are_named(networks, data_dir, tmp_path):
    config = dstnet.get_config("smoke")
    config.dataset.data_dir = data_dir
    with pytest.raises(ValueError, match="features.magnifier"):
        experiment.train_and_evaluate(config, tmp_path)
