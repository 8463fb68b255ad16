"""Adaptive alpha (Adaptive DSTNet Algorithm 1): the batched device loop against a plain Python transcription."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mer_jax.models.adaptive_alpha import adaptive_alpha, num_alphas

K = 4
# Top-1 confidence of each sample (row) at alpha = 3, 4, 5, 6, 7 (columns); the top-1 class in CLASSES.
CONFIDENCES = np.array([
    [0.90, 0.95, 0.99, 0.99, 0.99],   # reaches the threshold at init_alpha
    [0.50, 0.60, 0.85, 0.99, 0.30],   # exactly 0.85 at alpha 5: >= stops there
    [0.60, 0.80, 0.80, 0.70, 0.40],   # never; tie 0.80 at alphas 4 and 5 keeps alpha 4
    [0.30, 0.40, 0.50, 0.60, 0.70],   # never; the last alpha is the best
    [0.30, 0.30, 0.30, 0.30, 0.90],   # reaches it at max_alpha
    [0.84, 0.50, 0.40, 0.30, 0.84],   # never; just below, a tie with the last keeps alpha 3
], np.float32)
CLASSES = np.array([[0, 1, 2, 3, 0], [1, 2, 3, 0, 1], [2, 3, 0, 1, 2],
                    [3, 0, 1, 2, 3], [0, 0, 1, 1, 2], [1, 3, 3, 3, 2]], np.int32)


def toy_probs(confidence, top):
    """Probabilities [.., K] with `confidence` at class `top` and the rest spread evenly."""
    xp = jnp if isinstance(confidence, jax.Array) else np
    rest = (xp.float32(1) - confidence) / xp.float32(K - 1)
    return xp.where(xp.arange(K) == top[..., None], confidence[..., None], rest[..., None]).astype(xp.float32)


def make_predict_at(confidences, classes, init_alpha=3.0, alpha_step=1.0):
    """predict_at(alpha, sample indices) reading the tables at column (alpha - init) / step."""
    confidences, classes = jnp.asarray(confidences), jnp.asarray(classes)

    def predict_at(alpha, index):
        column = jnp.round((alpha - init_alpha) / alpha_step).astype(jnp.int32)
        return toy_probs(confidences[index, column], classes[index, column])
    return predict_at


def algorithm_1(confidences, classes, sample, init_alpha=3.0, max_alpha=7.0, alpha_step=1.0, threshold=0.85):
    """Algorithm 1 for one sample, as section 3.5 states it: (high_conf, result, its alpha, last alpha tried)."""
    curr_alpha, high_conf, result, kept_alpha, column = init_alpha, 0.0, None, None, 0
    while curr_alpha <= max_alpha + 1e-9:
        last = curr_alpha
        probs = toy_probs(confidences[sample, column], classes[sample, column])
        conf = probs.max()
        if conf > high_conf:
            high_conf, result, kept_alpha = conf, int(probs.argmax()), curr_alpha
        if conf >= np.float32(threshold):
            break
        curr_alpha, column = curr_alpha + alpha_step, column + 1
    return high_conf, result, kept_alpha, last


def assert_matches_reference(out, confidences, classes, **kwargs):
    out = jax.tree.map(np.asarray, out)
    for sample in range(confidences.shape[0]):
        high_conf, result, alpha, last = algorithm_1(confidences, classes, sample, **kwargs)
        assert out.confidence[sample] == high_conf and out.prediction[sample] == result
        assert out.alpha[sample] == pytest.approx(alpha) and out.last_alpha[sample] == pytest.approx(last)
        np.testing.assert_allclose(out.probs[sample], toy_probs(np.float32(high_conf), np.int32(result)), rtol=1e-6)


def test_batch_matches_the_python_loop():
    index = jnp.arange(len(CONFIDENCES))
    out = adaptive_alpha(make_predict_at(CONFIDENCES, CLASSES), index)
    assert_matches_reference(out, CONFIDENCES, CLASSES)
    # The cases the table is built for, spelled out.
    np.testing.assert_array_equal(out.alpha, [3, 5, 4, 7, 7, 3])
    np.testing.assert_array_equal(out.last_alpha, [3, 5, 7, 7, 7, 7])
    np.testing.assert_array_equal(out.prediction, [0, 3, 3, 3, 2, 1])
    np.testing.assert_array_equal(out.confidence, CONFIDENCES[np.arange(6), [0, 2, 1, 4, 4, 0]])


def test_jitted_with_other_alphas_matches_the_python_loop():
    """Random tables rounded to 0.05 (ties across alphas), a half step, a max_alpha off the grid."""
    rng = np.random.default_rng(0)
    confidences = (np.round(rng.uniform(0.3, 1.0, (16, 6)) / 0.05) * 0.05).astype(np.float32)
    classes = rng.integers(0, K, (16, 6)).astype(np.int32)
    settings = dict(init_alpha=1.0, max_alpha=3.7, alpha_step=0.5, threshold=0.9)
    assert num_alphas(1.0, 3.7, 0.5) == 6
    predict_at = make_predict_at(confidences, classes, 1.0, 0.5)
    out = jax.jit(lambda index: adaptive_alpha(predict_at, index, **settings))(jnp.arange(16))
    assert_matches_reference(out, confidences, classes, **settings)
    assert 0 < (out.last_alpha < 3.5).sum() < 16   # some samples stop early, some run to the end


def test_loop_stops_when_every_sample_has():
    """One predict_at call per alpha until the slowest sample stops (here alpha 5), none after."""
    calls = []
    predict_at = make_predict_at(CONFIDENCES[:2], CLASSES[:2])

    def counted(alpha, index):
        jax.debug.callback(lambda a: calls.append(float(a)), alpha)
        return predict_at(alpha, index)
    out = jax.jit(lambda index: adaptive_alpha(counted, index))(jnp.arange(2))
    jax.block_until_ready(out)
    assert calls == [3.0, 4.0, 5.0]


@pytest.mark.parametrize("kwargs, field", [({"alpha_step": 0.0}, "alpha_step"), ({"init_alpha": 8.0}, "init_alpha"),
                                           ({"threshold": 1.5}, "threshold")])
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        adaptive_alpha(make_predict_at(CONFIDENCES, CLASSES), jnp.arange(6), **kwargs)


def test_predict_at_must_give_a_probability_matrix():
    with pytest.raises(ValueError, match=r"\[B, K\]"):
        adaptive_alpha(lambda alpha, index: jnp.ones(index.shape), jnp.arange(3))
