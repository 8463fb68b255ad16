"""mer_jax.analysis on one finished M3ENet smoke run (configs/m3enet.py:smoke on the synthetic smoke corpus):
loading it, restoring folds, predicting on its features and on clips decoded from its corpus, the plots."""
import jax
import numpy as np
import pytest

from configs import m3enet
from mer_jax import analysis, experiment
from mer_jax.analysis import plots


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    config = m3enet.get_config("smoke")   # fold_chunk 0 (all six folds in one chunk), fold_conv grouped
    config.dataset.data_dir = data_dir
    config.train.progress = False
    workdir = tmp_path_factory.mktemp("analysis_run")
    experiment.train_and_evaluate(config, workdir)
    return analysis.load_run(workdir)


def _stored(run, rows):
    return run.predictions[[f"prob_{c}" for c in run.class_names]].to_numpy()[rows]


def test_load_run_fields(run):
    assert run.config.model.name == "m3enet" and run.results["model"] == "m3enet"
    assert run.folds == [f"synthetic/s0{i}" for i in range(1, 7)] and run.plan.test.shape == (6, len(run.clips))
    assert run.class_names == list(run.results["per_class"])
    table = run.predictions
    assert {"clip", "subject", "dataset", "fold", "label", "prediction", "correct"} <= set(table.columns)
    assert table["clip"].tolist() == run.clips
    assert np.array_equal(table["correct"], table["label"] == table["prediction"])
    assert table["correct"].mean() == pytest.approx(run.results["accuracy"])
    assert run.history["epoch"] == [1, 2, 3, 4] and sorted(run.history["train_loss"]) == run.folds
    assert all(len(c) == 4 and np.all(np.isfinite(c)) for c in run.history["train_loss"].values())


def test_restored_fold_reproduces_its_held_out_predictions(run):
    _, _, arrays = run.inputs
    fold = 2
    model = run.restore(run.folds[fold])
    rows = run.plan.test[fold]
    logits = model({k: arrays[k][rows] for k in ("flow", "frames")}, train=False)
    np.testing.assert_allclose(jax.nn.softmax(logits, -1), _stored(run, rows), atol=1e-5)
    with pytest.raises(ValueError, match="not a fold"):
        run.restore("synthetic/s99")


def test_every_fold_predicts_its_held_out_samples_and_the_ensemble_averages_them(run):
    _, _, arrays = run.inputs
    ensemble = analysis.predict_arrays(run, arrays)   # reads every fold's checkpoint once; kept on the run
    per_fold = [analysis.predict_arrays(run, arrays, folds=f) for f in range(run.plan.num_folds)]
    for f, probs in enumerate(per_fold):
        np.testing.assert_allclose(probs[run.plan.test[f]], _stored(run, run.plan.test[f]), atol=1e-5)
    assert ensemble.shape == (len(run.clips), len(run.class_names))
    np.testing.assert_allclose(ensemble, np.mean(per_fold, 0), atol=1e-6)
    np.testing.assert_allclose(ensemble.sum(-1), 1, atol=1e-5)
    assert len(run.restore_all()) == run.plan.num_folds


def test_predict_on_decoded_clips_matches_the_fold_that_held_them_out(run):
    corpus, _, _ = run.inputs
    fold = 4
    rows = np.flatnonzero(run.plan.test[fold])[:3]
    clips = analysis.Clips.from_corpus(corpus, rows)
    probs = analysis.predict(run, clips, folds=run.folds[fold])
    np.testing.assert_allclose(probs, _stored(run, rows), atol=1e-5)
    with pytest.raises(ValueError, match="onset"):
        analysis.Clips(videos=clips.videos[:1], onset=[5], apex=[1], offset=[2])


def test_each_plot_returns_a_figure_and_writes_a_png(run, tmp_path):
    figures = plots.save_all(run, tmp_path)
    assert set(figures) == {"confusion_matrix.png", "per_class_recall.png", "per_subject_accuracy.png",
                            "fold_curves.png"}
    _, _, arrays = run.inputs
    frames = arrays["frames"][0]   # grey onset, apex, offset
    figures["flow.png"] = plots.flow_and_strain(arrays["flow"][0], path=tmp_path / "flow.png")
    figures["magnified.png"] = plots.magnified_apex(frames[..., :1], frames[..., 1:2],
                                                    np.clip(frames[..., 1:2] * 1.5, 0, 1), alpha=2,
                                                    path=tmp_path / "magnified.png")
    for name, figure in figures.items():
        assert isinstance(figure, plots.Figure) and (tmp_path / name).stat().st_size > 1000
    with pytest.raises(ValueError, match="not in the run's results"):
        plots.confusion_matrix(run, "casme2")


def test_flow_colouring_codes_direction_as_hue_and_magnitude_as_value():
    flow = np.array([[[1.0, 0.0], [0.0, 2.0]], [[-2.0, 0.0], [0.0, 0.0]]])
    rgb = plots.flow_to_rgb(flow)
    np.testing.assert_allclose(rgb[0, 0], [0.5, 0, 0], atol=1e-6)    # +u: red, half the largest magnitude
    np.testing.assert_allclose(rgb[1, 0], [0, 1, 1], atol=1e-6)      # -u: cyan (hue 0.5), full value
    np.testing.assert_allclose(rgb[1, 1], [0, 0, 0], atol=1e-6)      # no motion: black
