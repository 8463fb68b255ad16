"""The fold-looped convolution equals JAX's grouped batching, forward and backward."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxpr_testing
from mer_jax.models import fold_conv

CASES = [  # (kernel, strides, padding)
    (3, (1, 1), ((1, 1), (1, 1))),
    (3, (2, 2), ((1, 1), (1, 1))),
    (1, (2, 2), ((0, 0), (0, 0))),
    (5, (1, 1), "VALID"),
]
DIMS = ("NHWC", "HWIO", "NHWC")


def _loss(conv, x, w, strides, padding):
    return jnp.sum(jnp.sin(conv(x, w, strides, padding, dimension_numbers=DIMS)))


def _folds(k, folds=3, batch=2, side=9, cin=4, cout=5):
    kx, kw = jax.random.split(jax.random.key(k))
    return (jax.random.normal(kx, (folds, batch, side, side, cin)),
            jax.random.normal(kw, (folds, k, k, cin, cout)))


@pytest.mark.parametrize("kernel,strides,padding", CASES)
def test_loop_matches_grouped_forward_and_gradients(kernel, strides, padding):
    x, w = _folds(kernel)
    results = {}
    for name in ("loop", "grouped"):
        with fold_conv.strategy(name):
            grad = jax.vmap(jax.value_and_grad(
                lambda x, w: _loss(fold_conv.conv_general_dilated, x, w, strides, padding), argnums=(0, 1)))
            results[name] = jax.jit(grad)(x, w)
    reference = jax.vmap(jax.value_and_grad(
        lambda x, w: _loss(lax.conv_general_dilated, x, w, strides, padding), argnums=(0, 1)))(x, w)
    for name, got in results.items():
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(reference)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)


def test_loop_strategy_has_one_ungrouped_convolution_per_fold():
    x, w = _folds(3, folds=4)
    def groups_under(name):
        step = jax.vmap(jax.grad(lambda x, w: _loss(fold_conv.conv_general_dilated, x, w, (1, 1), "SAME"),
                                 argnums=(0, 1)))
        with fold_conv.strategy(name):
            return jaxpr_testing.conv_groups(step, x, w)

    looped, grouped = groups_under("loop"), groups_under("grouped")
    assert looped and set(looped) == {1}
    assert len(looped) == 4 * 3          # forward, input gradient and kernel gradient of each fold
    assert len(grouped) == 3 and max(grouped) > 1


def test_long_batched_axes_keep_the_grouped_form():
    x, w = _folds(3, folds=fold_conv.MAX_UNROLLED + 1, batch=1, side=4, cin=2, cout=2)
    with fold_conv.strategy("loop"):
        groups = jaxpr_testing.conv_groups(jax.vmap(lambda x, w: fold_conv.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=DIMS)), x, w)
    assert len(groups) == 1 and groups[0] == fold_conv.MAX_UNROLLED + 1


def test_an_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="train.fold_conv"):
        with fold_conv.strategy("unrolled"):
            pass
