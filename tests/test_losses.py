"""Focal loss, inverse-frequency alpha (M3ENet section 4.1.4) and cross entropy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.train import losses

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(8, 4)).astype(np.float32) * 3
LABELS = RNG.integers(0, 4, size=8)


def numpy_focal(logits, labels, alpha, gamma):
    p = np.exp(logits - logits.max(1, keepdims=True))
    p_t = (p / p.sum(1, keepdims=True))[np.arange(len(labels)), labels]
    return np.mean(-alpha[labels] * (1 - p_t) ** gamma * np.log(p_t))


def test_focal_with_gamma_0_and_alpha_1_is_cross_entropy():
    focal = losses.focal_loss(LOGITS, LABELS, jnp.ones(4), gamma=0.0)
    np.testing.assert_allclose(focal, losses.cross_entropy(LOGITS, LABELS), rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_matches_numpy(gamma):
    alpha = np.array([0.9, 0.5, 0.7, 0.9], np.float32)
    np.testing.assert_allclose(losses.focal_loss(LOGITS, LABELS, alpha, gamma=gamma),
                               numpy_focal(LOGITS, LABELS, alpha, gamma), rtol=1e-5)


def test_weights_mask_padded_samples():
    alpha = np.full(4, 0.75, np.float32)
    padded_logits = np.concatenate([LOGITS, RNG.normal(size=(3, 4)).astype(np.float32)])
    padded_labels = np.concatenate([LABELS, [0, 1, 2]])
    mask = np.r_[np.ones(8), np.zeros(3)]
    np.testing.assert_allclose(losses.focal_loss(padded_logits, padded_labels, alpha, weights=mask),
                               losses.focal_loss(LOGITS, LABELS, alpha), rtol=1e-6)
    np.testing.assert_allclose(losses.cross_entropy(padded_logits, padded_labels, weights=mask),
                               losses.cross_entropy(LOGITS, LABELS), rtol=1e-6)
    assert losses.focal_loss(LOGITS, LABELS, alpha, weights=np.zeros(8)) == 0.0


def test_cross_entropy_label_smoothing():
    log_p = LOGITS - np.log(np.exp(LOGITS).sum(1, keepdims=True))
    targets = np.eye(4)[LABELS] * 0.9 + 0.1 / 4
    np.testing.assert_allclose(losses.cross_entropy(LOGITS, LABELS, label_smoothing=0.1),
                               np.mean(-(targets * log_p).sum(1)), rtol=1e-5)


def test_inverse_frequency_alpha():
    labels = np.array([0] * 6 + [1] * 3 + [2])
    np.testing.assert_allclose(losses.inverse_frequency_alpha(labels, 4), [0.4, 0.7, 0.9, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="labels must lie"):
        losses.inverse_frequency_alpha(np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="at least one"):
        losses.inverse_frequency_alpha(np.array([], int), 4)


def test_balanced_class_weights_are_m_over_k_m_i():
    labels = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(losses.balanced_class_weights(labels, 4), [6 / 12, 6 / 4, 6 / 8, 1.0], rtol=1e-6)


def test_class_weighted_cross_entropy_is_pytorchs_weighted_mean():
    logits = jnp.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -1.0, 0.0]])
    labels = jnp.array([0, 2, 1])
    w = np.array([0.5, 2.0, 1.0], np.float32)
    log_p = np.asarray(jax.nn.log_softmax(logits))
    per_sample = -log_p[np.arange(3), np.asarray(labels)]
    expected = np.sum(w[labels] * per_sample) / np.sum(w[labels])
    np.testing.assert_allclose(losses.cross_entropy(logits, labels, class_weights=w), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.cross_entropy(logits, labels, class_weights=np.ones(3)),
                               losses.cross_entropy(logits, labels), rtol=1e-6)
