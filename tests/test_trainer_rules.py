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
