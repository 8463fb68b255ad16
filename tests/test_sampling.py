"""Per-fold training pools and batch plans (train/sampling.py), alpha balancing included."""
import numpy as np
import pytest

from mer_jax.train import sampling


def test_full_pool_holds_every_training_sample_with_every_variant():
    mask = np.array([True, False, True, True])
    samples, variants = sampling.full_pool(mask, 3)
    assert sorted(zip(samples.tolist(), variants.tolist())) == [(i, v) for i in (0, 2, 3) for v in range(3)]


@pytest.mark.parametrize("per_class", [4, 12, 30])
def test_balanced_pool_gives_each_class_per_class_pairs(per_class):
    """Adaptive DSTNet's alpha balancing: every class of the fold's training samples gets `per_class`
    (sample, variant) pairs; a big class gives distinct samples, a small one uses every sample's variants
    before repeating a pair; samples outside the fold never appear."""
    labels = np.array([0] * 10 + [1] * 3 + [2] * 6 + [1] * 2)
    mask = np.ones(len(labels), bool)
    mask[-2:] = False                       # not training samples of this fold
    samples, variants = sampling.balanced_pool(mask, labels, per_class, 5, seed=0, fold_id=2)
    assert len(samples) == 3 * per_class and mask[samples].all() and ((0 <= variants) & (variants < 5)).all()
    for label in (0, 1, 2):
        rows = labels[samples] == label
        assert rows.sum() == per_class
        pairs = list(zip(samples[rows].tolist(), variants[rows].tolist()))
        members = int((labels[mask] == label).sum())
        assert len(set(pairs)) == min(per_class, 5 * members)              # repeats only when it must
        counts = np.bincount(samples[rows], minlength=len(labels))[labels == label]
        assert counts.max() - counts[mask[labels == label]].min() <= 1        # samples used evenly
    again = sampling.balanced_pool(mask, labels, per_class, 5, seed=0, fold_id=2)
    np.testing.assert_array_equal(again[0], samples)
    np.testing.assert_array_equal(again[1], variants)


def test_epoch_batches_cover_the_pool_and_depend_only_on_seed_fold_epoch():
    pool = sampling.full_pool(np.ones(10, bool), 2)
    steps = sampling.steps_per_epoch([len(pool[0])], 4)
    ids, variants = sampling.epoch_batches(pool, 3, 0, seed=1, batch_size=4, num_steps=steps)
    assert ids.shape == variants.shape == (5, 4)
    assert sorted(zip(ids.ravel().tolist(), variants.ravel().tolist())) == sorted(
        zip(pool[0].tolist(), pool[1].tolist()))
    np.testing.assert_array_equal(sampling.epoch_batches(pool, 3, 0, seed=1, batch_size=4, num_steps=steps)[0], ids)
    assert not np.array_equal(sampling.epoch_batches(pool, 3, 1, seed=1, batch_size=4, num_steps=steps)[0], ids)
