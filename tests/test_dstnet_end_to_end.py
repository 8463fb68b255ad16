"""Adaptive DSTNet end to end on the synthetic smoke corpus (configs/dstnet.py:smoke): the smoke-size
magnifier and RAFT small loaded from checkpoints, the apex magnified at 3 factors and RAFT's MDOF to each,
alpha balancing, DSTNet under LOSO with a fixed test factor and with the adaptive loop; with -m slow, the
cross-dataset task (leave one dataset out) on a small MEGC2019 composite fixture.

The two networks' weights are their initialisations saved as checkpoints: training them costs minutes
of compiling on 2 CPU cores (tests/test_magnifier.py and tests/test_raft_training.py train them), and
these tests check the pipeline, not the magnification or the flow.
"""
import csv
import json

import numpy as np
import pandas as pd
import pytest

import jax
from flax import nnx

from configs import dstnet, magnifier
from mer_jax import experiment
from mer_jax.features.magnifier_net import MagnifierNet
from mer_jax.features.magnify import save_magnifier
from mer_jax.data.synthetic.archives.megc2019_cde import GROUND_TRUTH, write_megc2019_cde
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


@pytest.mark.parametrize("threshold", [0.0, 0.85], ids=["fixed_alpha", "adaptive"])
def test_smoke_loso(networks, data_dir, tmp_path, threshold):
    results = _run(networks, data_dir, tmp_path, adaptive_threshold=threshold)
    assert results["model"] == "dstnet" and results["protocol"]["num_folds"] == 6
    assert 0.0 <= results["uf1"] <= 1.0 and 0.0 <= results["uar"] <= 1.0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["train"]["adaptive_threshold"] == threshold
    assert saved["config"]["train"]["balance_per_class"] == 12
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    probs = predictions[["prob_negative", "prob_positive", "prob_surprise"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # the factor the adaptive loop kept, one of the stored ones, for each sample (adaptive runs only)
    assert ("alpha" in predictions) == bool(threshold)
    if threshold:
        assert set(predictions["alpha"]) <= {3.0, 4.0, 5.0}


def test_missing_networks_are_named(networks, data_dir, tmp_path):
    config = dstnet.get_config("smoke")
    config.dataset.data_dir = data_dir
    with pytest.raises(ValueError, match="features.magnifier"):
        experiment.train_and_evaluate(config, tmp_path)


@pytest.mark.slow
def test_cross_dataset_lodo_on_a_composite_fixture(networks, tmp_path):
    """configs/dstnet.py:cross_dataset's protocol (LODO over SMIC / CASME II / SAMM, MEGC 3 classes, the
    adaptive loop) at smoke sizes on a composite fixture of 4 official members per dataset."""
    rows = list(csv.reader(GROUND_TRUTH.read_text().splitlines()))
    subset = [row for dataset in ("smic", "casme2", "samm") for row in [r for r in rows if r[0] == dataset][:4]]
    (tmp_path / "gt.csv").write_text("".join(",".join(row) + "\n" for row in subset))
    write_megc2019_cde(tmp_path / "manual", ground_truth=tmp_path / "gt.csv")
    (tmp_path / "manual" / "combined_3class_gt.csv").write_text((tmp_path / "gt.csv").read_text())  # the membership
    cross = dstnet.get_config("cross_dataset")
    config = dstnet.get_config("smoke")
    config.dataset.update(name=cross.dataset.name, protocol=cross.dataset.protocol,
                          manual_dir=str(tmp_path / "manual"), data_dir=str(tmp_path / "tfds"))
    config.train.adaptive_threshold = cross.train.adaptive_threshold
    config.features.magnifier, config.features.raft, config.features.cache_dir = networks
    config.train.progress = False
    results = experiment.train_and_evaluate(config, tmp_path / "run")
    assert results["protocol"]["num_folds"] == 3 and set(results["per_dataset"]) == {"smic", "casme2", "samm"}
    for dataset, scores in results["per_dataset"].items():
        assert {"accuracy", "uf1", "uar"} <= set(scores), (dataset, scores)
    assert len(np.loadtxt(tmp_path / "run" / "predictions.csv", delimiter=",", skiprows=1, usecols=6)) == 12
