"""The trainer's model-selection rules on a tiny model (trainer.py): each fold reports the eval epoch
with its best score, on validation subjects (val) or, flagged, on its test subject (test_selected)."""
import numpy as np
import pytest

from mer_jax.evaluate import metrics
from test_early_stopping import NUM_SUBJECTS, _data, _plan, _train


@pytest.mark.parametrize("selection", ["val", "test_selected"])
def test_each_fold_reports_its_best_eval_epoch(tmp_path, selection):
    result = _train(tmp_path, selection=selection, num_epochs=6, learning_rate=0.03)
    h, labels, plan = result.history, _data()["label"], _plan()
    for f in range(NUM_SUBJECTS):
        if selection == "val":
            scores = h["val_score"][:, f]
        else:
            rows = plan.test[f]
            scores = np.array([metrics.uf1(labels[rows], p[rows].argmax(-1), 3) for p in h["test_probs"]])
        best = h["eval_epoch"][int(np.argmax(scores))]          # the first of equal scores
        assert result.selected_epoch[f] == best
        epoch_index = h["eval_epoch"].index(best)
        np.testing.assert_allclose(result.test_probs[plan.test[f]], h["test_probs"][epoch_index][plan.test[f]])
    assert (result.selected_epoch < 6).any()   # the rule picked, not simply the last epoch


def test_folds_start_from_another_runs_fold_model(tmp_path):
    """init.from_run: every fold starts from the model a finished run reports for one of its folds. With a
    learning rate of 0 nothing moves, so each fold predicts as that model did on its own held-out subject."""
    from test_early_stopping import PooledLinear, _config

    from mer_jax.train import trainer

    from mer_jax.train import checkpointing

    source = _train(tmp_path / "source", selection="last", num_epochs=2, learning_rate=0.05)
    # what experiment.train_and_evaluate records next to the checkpoints
    checkpointing.write_or_check_run_info(tmp_path / "source", {
        "config": _config(selection="last", num_epochs=2).to_dict(), "plan": _plan().to_json(), "clips": []})

    def tuned(workdir, from_fold, make=lambda rngs: PooledLinear(3, rngs=rngs), **train):
        config = _config(selection="last", num_epochs=1, learning_rate=0.0, **train)
        config.init.from_run, config.init.from_fold = str(tmp_path / "source"), from_fold
        return trainer.train_folds(config=config, workdir=tmp_path / workdir, data=_data(), plan=_plan(),
                                   make_model=make, input_keys=("flow",), num_classes=3,
                                   score_fn=lambda y, p: metrics.uf1(y, p, 3))

    result = tuned("tuned", "s2")
    rows = _plan().test[2]
    np.testing.assert_allclose(result.test_probs[rows], source.test_probs[rows], atol=1e-6)
    others = tuned("tuned_first", "")                               # the first fold, s0
    np.testing.assert_allclose(others.test_probs[_plan().test[0]], source.test_probs[_plan().test[0]], atol=1e-6)
    assert not np.allclose(others.test_probs[rows], source.test_probs[rows])
    with pytest.raises(ValueError, match="from_fold='s9' is not a fold"):
        tuned("bad_fold", "s9")
    with pytest.raises(ValueError, match="another network.*head"):
        tuned("bad_net", "", make=lambda rngs: PooledLinear(4, rngs=rngs))
    with pytest.raises(FileNotFoundError, match="holds no run"):
        trainer.train_folds(config=_bad_source(tmp_path), workdir=tmp_path / "x",
                            data=_data(), plan=_plan(), make_model=lambda rngs: PooledLinear(3, rngs=rngs),
                            input_keys=("flow",), num_classes=3, score_fn=lambda y, p: metrics.uf1(y, p, 3))


def _bad_source(tmp_path):
    from test_early_stopping import _config

    config = _config(selection="last", num_epochs=1)
    config.init.from_run = str(tmp_path / "nothing")
    return config


def test_a_start_run_must_share_no_subject(tmp_path):
    """A model pre-trained on subjects a run evaluates on has seen its test subjects: refused, named."""
    import types

    from mer_jax import experiment
    from mer_jax.train import checkpointing

    checkpointing.write_or_check_run_info(tmp_path, {"config": {}, "plan": {}, "clips": ["smic/s1/a", "smic/s2/b"]})
    corpus = lambda clips: types.SimpleNamespace(clip=np.array(clips))
    experiment._check_no_shared_subjects(tmp_path, corpus(["casme2/sub01/EP01", "samm/006/x"]))
    with pytest.raises(ValueError, match="subjects this run evaluates on.*smic/s2"):
        experiment._check_no_shared_subjects(tmp_path, corpus(["casme2/sub01/EP01", "smic/s2/c"]))
