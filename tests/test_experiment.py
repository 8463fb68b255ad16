"""End to end: M3ENet under LOSO on the synthetic smoke corpus, through `train_and_evaluate`."""
import json

import numpy as np
import pandas as pd
import pytest

from configs import m3enet
from mer_jax import experiment


def smoke_config(data_dir, **train):
    config = m3enet.get_config("smoke")
    config.dataset.data_dir = data_dir
    config.train.progress = False
    for key, value in train.items():
        config.train[key] = value
    return config


def run(config, workdir):
    return experiment.train_and_evaluate(config, workdir)


@pytest.fixture(scope="module")
def baseline(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("baseline")
    return run(smoke_config(data_dir), workdir), workdir


def probabilities(workdir):
    """Held-out class probabilities of every sample, in corpus order, from predictions.csv."""
    table = pd.read_csv(workdir / "predictions.csv")
    return table[[c for c in table.columns if c.startswith("prob_")]].to_numpy()


def test_run_writes_the_report(baseline):
    results, workdir = baseline
    saved = json.loads((workdir / "results.json").read_text())
    for key in ("uf1", "uar", "accuracy", "per_class", "per_dataset", "per_fold", "protocol", "selection",
                "config"):
        assert key in saved
    assert saved["selection"] == "last" and saved["protocol"]["name"] == "loso"
    assert saved["protocol"]["num_folds"] == len(saved["per_fold"]["folds"]) == 6
    assert (workdir / "results.md").read_text().count("UF1") >= 1
    for png in ("confusion_matrix.png", "curves.png"):
        assert (workdir / png).stat().st_size > 5000
    assert (workdir / "checkpoints" / "run.json").exists()
    assert any((workdir / "checkpoints" / "chunk_000").iterdir())


def test_shuffled_labels_are_a_permutation(data_dir):
    plain = experiment.load_inputs(smoke_config(data_dir))[1]
    config = smoke_config(data_dir)
    config.dataset.shuffle_labels = True
    shuffled = experiment.load_inputs(config)[1]
    assert sorted(shuffled) == sorted(plain) and not np.array_equal(shuffled, plain)


# At smoke size real labels stay near chance too, so this control means little there; the meaningful one
# trains the full default run (tests/test_default_run.py, slow).
@pytest.mark.slow
def test_shuffled_labels_stay_at_chance(data_dir, tmp_path):
    config = smoke_config(data_dir)
    config.dataset.shuffle_labels = True
    shuffled = run(config, tmp_path)
    assert shuffled["protocol"]["shuffled_labels"]
    assert shuffled["uf1"] <= 0.45, shuffled["uf1"]


def test_resumed_run_ends_like_an_uninterrupted_one(baseline, data_dir, tmp_path):
    assert run(smoke_config(data_dir, stop_after_epochs=3), tmp_path) is None
    assert not (tmp_path / "results.json").exists()
    resumed = run(smoke_config(data_dir), tmp_path)
    np.testing.assert_array_equal(probabilities(tmp_path), probabilities(baseline[1]))
    assert resumed["uf1"] == baseline[0]["uf1"]


def test_workdir_of_another_run_is_refused(baseline, data_dir):
    _, workdir = baseline
    with pytest.raises(ValueError, match="different run"):
        run(smoke_config(data_dir, num_epochs=5), workdir)


# Sharded, chunked and single-device runs differ only by float reassociation, which Adam amplifies;
# after 2 epochs that is about 1e-3 in probability, while another seed moves them by about 0.08.
MESH_TOLERANCE = 5e-3


def short_config(data_dir, fold_devices, data_devices, **train):
    return _with_mesh(smoke_config(data_dir, num_epochs=2, **train), fold_devices, data_devices)


@pytest.fixture(scope="module")
def single_device(data_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("single_device")
    run(short_config(data_dir, 1, 1), workdir)
    return probabilities(workdir)


# (2, 1, 3) shards folds and chunks them, (1, 2, 0) shards each batch over 'data'; (2, 1, 0), the same
# without chunks, and (1, 1, 1), one fold after another on one device, only run with `-m slow`
@pytest.mark.parametrize("fold_devices,data_devices,fold_chunk",
                         [pytest.param(2, 1, 0, marks=pytest.mark.slow), (1, 2, 0), (2, 1, 3),
                          pytest.param(1, 1, 1, marks=pytest.mark.slow)])
def test_sharded_and_chunked_runs_match_one_device(single_device, data_dir, tmp_path, fold_devices,
                                                   data_devices, fold_chunk):
    run(short_config(data_dir, fold_devices, data_devices, fold_chunk=fold_chunk), tmp_path)
    np.testing.assert_allclose(probabilities(tmp_path), single_device, atol=MESH_TOLERANCE)


@pytest.mark.slow   # every default run of the other tests is seeded too; this one checks bit-equality
def test_same_seed_same_results(single_device, data_dir, tmp_path):
    run(short_config(data_dir, 1, 1), tmp_path)
    np.testing.assert_array_equal(probabilities(tmp_path), single_device)


@pytest.mark.slow
def test_mesh_tolerance_tells_different_runs_apart(single_device, data_dir, tmp_path):
    config = short_config(data_dir, 1, 1)
    config.seed = 1
    run(config, tmp_path)
    assert np.abs(probabilities(tmp_path) - single_device).max() > 5 * MESH_TOLERANCE


def _with_mesh(config, fold_devices, data_devices):
    config.mesh.fold_devices = fold_devices
    config.mesh.data_devices = data_devices
    return config


# Only with -m slow: selection=val runs end to end in the DFR-Net smoke LOSO (tests/test_dfrnet.py), both
# rules on a tiny model in tests/test_trainer_rules.py, the test_selected label in tests/test_report.py
@pytest.mark.slow
@pytest.mark.parametrize("selection", ["val", "test_selected"])
def test_selection_modes_are_labelled(data_dir, tmp_path, selection):
    results = run(smoke_config(data_dir, selection=selection, num_epochs=2, eval_every_epochs=1), tmp_path)
    assert results["selection"] == selection
    markdown = (tmp_path / "results.md").read_text()
    assert ("test_selected" in markdown) == (selection == "test_selected")
    assert all(1 <= e <= 2 for e in results["selected_epoch"].values())
