import numpy as np
import pytest

from mer_jax.data import folds


def _corpus(seed=0):
    rng = np.random.default_rng(seed)
    datasets = np.repeat(["casme2", "samm", "smic"], [40, 30, 20])
    subjects = np.array([f"{d}/s{rng.integers(0, 5)}" for d in datasets])
    return subjects, datasets


def _subject_sets(plan, subjects, mask):
    return [set(subjects[row].tolist()) for row in mask]


@pytest.mark.parametrize("protocol", ["loso", "lodo", "kfold"])
def test_train_and_test_subjects_are_disjoint(protocol):
    subjects, datasets = _corpus()
    plan = folds.make_plan(protocol, subjects, datasets, k=4)
    for tr, te in zip(_subject_sets(plan, subjects, plan.train), _subject_sets(plan, subjects, plan.test)):
        assert tr and te and not tr & te


@pytest.mark.parametrize("protocol", ["loso", "lodo", "kfold"])
def test_every_sample_is_tested_exactly_once(protocol):
    subjects, datasets = _corpus(1)
    plan = folds.make_plan(protocol, subjects, datasets, k=3)
    np.testing.assert_array_equal(plan.test.sum(0), np.ones(len(subjects)))
    np.testing.assert_array_equal(plan.train | plan.test, np.ones_like(plan.train))


def test_loso_has_one_fold_per_subject_named_after_it():
    subjects, datasets = _corpus(2)
    plan = folds.loso(subjects)
    assert plan.names == tuple(sorted(set(subjects)))
    for name, row in zip(plan.names, plan.test):
        assert set(subjects[row]) == {name}


def test_lodo_holds_out_each_dataset():
    subjects, datasets = _corpus()
    plan = folds.lodo(datasets)
    assert plan.names == ("casme2", "samm", "smic")
    for name, row in zip(plan.names, plan.test):
        assert set(datasets[row]) == {name} and name not in set(datasets[~row])


def test_validation_comes_from_training_subjects_only():
    subjects, datasets = _corpus(3)
    plan = folds.with_validation(folds.loso(subjects), subjects, num_val_subjects=2, seed=5)
    for f in range(plan.num_folds):
        val_subj = set(subjects[plan.val[f]])
        assert len(val_subj) == 2
        assert not val_subj & set(subjects[plan.test[f]])
        assert not val_subj & set(subjects[plan.train[f]])
    np.testing.assert_array_equal(plan.test.sum(0), np.ones(len(subjects)))


def test_json_round_trip():
    subjects, datasets = _corpus()
    plan = folds.with_validation(folds.kfold(subjects, 3, seed=1), subjects, 1)
    back = folds.FoldPlan.from_json(plan.to_json())
    assert back.names == plan.names
    for f in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(back, f), getattr(plan, f))


def test_bad_requests_raise_clear_errors():
    subjects, datasets = _corpus()
    with pytest.raises(ValueError, match="protocol"):
        folds.make_plan("loo", subjects, datasets)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        folds.loso(["a/1", "a/1"])
    with pytest.raises(ValueError, match="k-fold"):
        folds.kfold(subjects, 100)
