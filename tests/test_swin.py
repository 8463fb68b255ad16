"""Swin transformer (EDMDBN backbone): stage grids (paper Fig. 2), window helpers against loops, W-MSA
against a naive per-token reference, token attention (Eq. 1-2) against NumPy, parameter count against
closed-form arithmetic, remat, drop path, bfloat16 and the fold-vmapped apply."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mer_jax.models import complexity
from mer_jax.models.precision import set_compute_dtype
from mer_jax.models.swin import (SwinBlock, SwinTransformer, TokenAttention, WindowAttention, _drop_path,
                                 relative_position_index, shifted_window_mask, window_partition, window_reverse)

TINY = dict(embed_dim=8, depths=(1, 1, 2), num_heads=(1, 2, 4))
# A tiny 3-D model whose stages see shifted windows and padding: tokens (2, 7, 7) -> (2, 4, 4) with
# window (2, 3, 3), so effective window (2, 3, 3), shift (0, 1, 1), grids padded to 9 x 9 and 6 x 6.
SMALL = dict(patch_size=(2, 4, 4), embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=(2, 3, 3))
SMALL_INPUT = (2, 4, 28, 28, 3)


@pytest.fixture(scope="module")
def small():
    """(graphdef, state, jitted eval call) of the SMALL model with drop path 0.5, built and compiled once."""
    graphdef, state = nnx.split(SwinTransformer(**SMALL, drop_path_rate=0.5, rngs=nnx.Rngs(0)))
    return graphdef, state, forward(graphdef, train=False)


def graphdef_of(**kwargs):
    """The graph of a SMALL variant, from an abstract model (no allocation, no init)."""
    return nnx.graphdef(nnx.eval_shape(lambda: SwinTransformer(**SMALL, **kwargs, rngs=nnx.Rngs(0))))


def forward(graphdef, **call):
    return jax.jit(lambda state, x, key=None: nnx.merge(graphdef, state)(x, dropout_key=key, **call))


@pytest.mark.parametrize("input_shape, patch", [((1, 8, 224, 224, 3), (8, 4, 4)),   # detail branch
                                                ((1, 1, 224, 224, 3), (1, 4, 4))])  # entire branch (2-D)
def test_stage_token_grids_match_paper_fig2(input_shape, patch):
    """Fig. 2: T/8 x 56 x 56 x C, 28 x 28 x 2C, 14 x 14 x 4C; section 3.5: 4C x N features."""
    model = nnx.eval_shape(lambda: SwinTransformer(patch_size=patch, **TINY, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    out, maps = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x, train=False, return_attention=True),
                               state, jax.ShapeDtypeStruct(input_shape, jnp.float32))
    assert [m.shape for m in maps] == [(1, 1, 56, 56), (1, 1, 28, 28), (1, 1, 14, 14)]
    assert [stage.blocks[0].norm1.scale.shape for stage in model.layers] == [(8,), (16,), (32,)]
    assert out.shape == (1, 1, 14, 14, 32) and model.num_features == 32


def test_window_partition_round_trip():
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 9, 3))
    windows = window_partition(x, (2, 3, 3))
    assert windows.shape == (2 * 2 * 2 * 3, 18, 3)
    # Window 7 is sample 0, window (d, h, w) = (1, 0, 1) in raster order.
    np.testing.assert_array_equal(windows[7], x[0, 2:4, 0:3, 3:6].reshape(18, 3))
    np.testing.assert_array_equal(window_reverse(windows, (2, 3, 3), (2, 4, 6, 9)), x)


@pytest.mark.parametrize("window, table", [((2, 3, 4), (2, 3, 4)), ((1, 7, 7), (8, 7, 7)), ((2, 2, 3), (4, 3, 5))])
def test_relative_position_index_against_loop(window, table):
    tokens = list(itertools.product(*(range(n) for n in window)))
    expected = np.array([[(a[0] - b[0] + table[0] - 1) * (2 * table[1] - 1) * (2 * table[2] - 1)
                          + (a[1] - b[1] + table[1] - 1) * (2 * table[2] - 1) + (a[2] - b[2] + table[2] - 1)
                          for b in tokens] for a in tokens])
    np.testing.assert_array_equal(relative_position_index(window, table), expected)


def test_relative_position_index_equals_video_swin_slice_for_one_frame():
    """D' = 1: Video Swin takes relative_position_index[:49, :49] of the (8, 7, 7) window's index."""
    full = relative_position_index((8, 7, 7), (8, 7, 7))
    assert full.max() == 15 * 13 * 13 - 1
    np.testing.assert_array_equal(relative_position_index((1, 7, 7), (8, 7, 7)), full[:49, :49])


def swin_region_labels(grid, window, shift):
    """Swin's own labelling: slices (0, -w), (-w, -s), (-s, None) per axis, later slices overwrite."""
    labels, count = np.zeros(grid, np.int64), 0
    for d, h, w in itertools.product(*[(slice(-k), slice(-k, -s), slice(-s, None)) for k, s in zip(window, shift)]):
        labels[d, h, w] = count
        count += 1
    return labels


@pytest.mark.parametrize("grid, window, shift", [((1, 9, 9), (1, 3, 3), (0, 1, 1)), ((4, 4, 6), (2, 2, 3), (1, 1, 1)),
                                                 ((2, 14, 14), (2, 7, 7), (0, 3, 3)), ((1, 14, 14), (1, 7, 7), (0, 3, 3))])
def test_shift_mask_against_brute_force_regions(grid, window, shift):
    labels = swin_region_labels(grid, window, shift)
    mask = shifted_window_mask(grid, window, shift)
    origins = list(itertools.product(*(range(0, n, k) for n, k in zip(grid, window))))
    assert mask.shape == (len(origins), np.prod(window), np.prod(window))
    for i, (d, h, w) in enumerate(origins):
        window_labels = labels[d:d + window[0], h:h + window[1], w:w + window[2]].reshape(-1)
        np.testing.assert_array_equal(mask[i], np.where(window_labels[:, None] != window_labels[None], -100.0, 0.0))


def naive_window_attention(x, params, heads, table_window, window, shift):
    """Per token: attention over the tokens of its window in the zero-padded grid rolled by -shift, with
    the relative position bias and the -100 mask between Swin regions; then roll back and crop."""
    b, d, h, w, c = x.shape
    head_dim = c // heads
    xp = np.pad(x, [(0, 0)] + [(0, -n % k) for n, k in zip((d, h, w), window)] + [(0, 0)])
    xp = np.roll(xp, [-s for s in shift], axis=(1, 2, 3))
    padded = xp.shape[1:4]
    regions = swin_region_labels(padded, window, shift)
    qkv = xp @ params["qkv_kernel"] + params["qkv_bias"]
    q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
    out = np.zeros_like(xp)
    for p in itertools.product(*(range(n) for n in padded)):
        origin = [i // k * k for i, k in zip(p, window)]
        members = list(itertools.product(*(range(o, o + k) for o, k in zip(origin, window))))
        rows = [(p[0] - a[0] + table_window[0] - 1) * (2 * table_window[1] - 1) * (2 * table_window[2] - 1)
                + (p[1] - a[1] + table_window[1] - 1) * (2 * table_window[2] - 1) + (p[2] - a[2] + table_window[2] - 1)
                for a in members]
        masked = np.array([-100.0 if any(shift) and regions[a] != regions[p] else 0.0 for a in members])
        keys = np.stack([k[(slice(None),) + a] for a in members], axis=1)       # [B, members, C]
        values = np.stack([v[(slice(None),) + a] for a in members], axis=1)
        query = q[(slice(None),) + p]                                          # [B, C]
        heads_out = []
        for m in range(heads):
            part = slice(m * head_dim, (m + 1) * head_dim)
            logits = np.einsum("bjc,bc->bj", keys[..., part], query[:, part]) * head_dim ** -0.5 \
                + params["table"][rows, m] + masked
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            heads_out.append(np.einsum("bj,bjc->bc", weights / weights.sum(-1, keepdims=True), values[..., part]))
        out[(slice(None),) + p] = np.concatenate(heads_out, -1) @ params["proj_kernel"] + params["proj_bias"]
    return np.roll(out, shift, axis=(1, 2, 3))[:, :d, :h, :w]


@pytest.mark.parametrize("grid, table_window, shifted, window, shift", [
    ((1, 6, 6), (1, 3, 3), True, (1, 3, 3), (0, 1, 1)),
    ((1, 7, 8), (1, 3, 3), True, (1, 3, 3), (0, 1, 1)),    # padded to 9 x 9
    ((4, 4, 4), (2, 2, 2), True, (2, 2, 2), (1, 1, 1)),
    ((3, 5, 4), (2, 2, 2), True, (2, 2, 2), (1, 1, 1)),    # padded to 4 x 6 x 4
    ((3, 5, 4), (2, 2, 2), False, (2, 2, 2), (0, 0, 0)),
    ((1, 5, 6), (4, 3, 3), True, (1, 3, 3), (0, 1, 1)),    # effective window inside the configured one
])
def test_window_attention_against_naive_reference(grid, table_window, shifted, window, shift):
    dim, heads = 8, 2
    rng = np.random.default_rng(1)
    module = WindowAttention(dim, heads, table_window, rngs=nnx.Rngs(0))
    params = {"qkv_kernel": rng.normal(size=(dim, 3 * dim)) * 0.5, "qkv_bias": rng.normal(size=3 * dim) * 0.5,
              "proj_kernel": rng.normal(size=(dim, dim)), "proj_bias": rng.normal(size=dim),
              "table": rng.normal(size=module.relative_position_bias_table.shape)}
    module.qkv.kernel[...] = params["qkv_kernel"]
    module.qkv.bias[...] = params["qkv_bias"]
    module.proj.kernel[...] = params["proj_kernel"]
    module.proj.bias[...] = params["proj_bias"]
    module.relative_position_bias_table[...] = params["table"]
    x = rng.normal(size=(2,) + grid + (dim,))
    got = np.asarray(module(jnp.asarray(x, jnp.float32), shifted=shifted))
    expected = naive_window_attention(x, params, heads, table_window, window, shift)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_token_attention_two_stages_against_numpy():
    rng = np.random.default_rng(2)
    first, second = TokenAttention(rngs=nnx.Rngs(0)), TokenAttention(rngs=nnx.Rngs(1))
    x1, x2 = rng.normal(size=(2, 1, 5, 5, 4)), rng.normal(size=(2, 1, 3, 3, 8))
    y1, a1 = first(jnp.asarray(x1, jnp.float32), None)
    y2, a2 = second(jnp.asarray(x2, jnp.float32), a1)

    def current(x, fc):   # Eq. 1: sigmoid(FC([mean_c; max_c]))
        w, b = np.asarray(fc.kernel[...])[:, 0], float(fc.bias[...][0])
        return 1 / (1 + np.exp(-(x.mean(-1) * w[0] + x.max(-1) * w[1] + b)))

    expected_a1 = current(x1, first.fc)
    padded = np.zeros((2, 1, 6, 6))
    padded[:, :, :5, :5] = expected_a1
    pooled = np.array([[[[padded[n, 0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max() for j in range(3)] for i in range(3)]]
                       for n in range(2)])
    expected_a2 = current(x2, second.fc) * pooled     # Eq. 2
    np.testing.assert_allclose(a1, expected_a1, rtol=1e-5)
    np.testing.assert_allclose(y1, x1 * expected_a1[..., None], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a2, expected_a2, rtol=1e-5)
    np.testing.assert_allclose(y2, x2 * expected_a2[..., None], rtol=1e-5, atol=1e-6)


def test_param_count_closed_form():
    """EDMDBN's configuration; the public code is ~44.1M for two branches + a 100,352 x K head."""
    def block(c, h):   # 2 LN + qkv + proj + bias table (15 x 13 x 13 = 2535 rows) + MLP (4c)
        return 2 * 2 * c + (3 * c * c + 3 * c) + (c * c + c) + 2535 * h + (4 * c * c + 4 * c) + (4 * c * c + c)

    def merging(c):    # LN(4c) + Linear(4c -> 2c, no bias)
        return 2 * 4 * c + 4 * c * 2 * c

    def branch(patch_values):
        embed = patch_values * 128 + 128 + 2 * 128
        stages = 2 * block(128, 4) + 2 * block(256, 8) + 6 * block(512, 16) + merging(128) + merging(256)
        return embed + stages + 3 * 3 + 2 * 512   # 3 token attentions (2 weights + bias), final LN

    counts = {}
    for patch in ((8, 4, 4), (1, 4, 4)):
        abstract = nnx.eval_shape(lambda: SwinTransformer(patch_size=patch, rngs=nnx.Rngs(0)))
        counts[patch] = complexity.count_params(abstract)
        assert counts[patch] == branch(3 * int(np.prod(patch)))
    assert counts[(8, 4, 4)] == 21_903_569
    assert counts[(8, 4, 4)] - counts[(1, 4, 4)] == (384 - 48) * 128
    plain = nnx.eval_shape(lambda: SwinTransformer(token_attention=False, rngs=nnx.Rngs(0)))
    assert counts[(8, 4, 4)] - complexity.count_params(plain) == 9
    two_branches_and_head = counts[(8, 4, 4)] + counts[(1, 4, 4)] + 100_352 * 3 + 3
    assert round(two_branches_and_head / 1e6, 1) == 44.1


def test_remat_gives_the_same_output_and_gradients(small):
    """Model output with remat on and off; gradients through one shifted block (cheaper to compile)."""
    _, state, evaluate = small
    x = jax.random.normal(jax.random.key(0), SMALL_INPUT)
    np.testing.assert_allclose(forward(graphdef_of(drop_path_rate=0.5, remat=True), train=False)(state, x),
                               evaluate(state, x), rtol=1e-6, atol=1e-6)
    block = SwinBlock(8, 1, (2, 3, 3), shifted=True, mlp_ratio=4.0, drop_path_rate=0.0, remat=False,
                      rngs=nnx.Rngs(0))
    tokens = jax.random.normal(jax.random.key(1), (2, 2, 7, 7, 8))
    results = []
    for remat in (False, True):
        block.remat = remat
        graph, params = nnx.split(block)
        loss = lambda p, t: jnp.sum(jnp.sin(nnx.merge(graph, p)(t, (None, None))))
        results.append(jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, tokens))
    (v0, g0), (v1, g1) = results
    np.testing.assert_allclose(v0, v1, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g0, g1)


def test_drop_path(small):
    graphdef, state, evaluate = small
    x = jax.random.normal(jax.random.key(0), SMALL_INPUT)
    with pytest.raises(ValueError, match="dropout_key"):
        nnx.merge(graphdef, state)(x, train=True)
    train = forward(graphdef, train=True)
    eval_out = evaluate(state, x)
    np.testing.assert_array_equal(eval_out, evaluate(state, x))
    assert float(jnp.abs(train(state, x, jax.random.key(1)) - eval_out).max()) > 1e-3
    # Per sample: the branch is dropped or kept and scaled by 1 / (1 - p).
    kept = np.asarray(_drop_path(jnp.ones((4000, 2, 3, 3, 4)), 0.25, jax.random.key(2)))
    assert set(np.unique(kept)) <= {0.0, np.float32(1 / 0.75)}
    assert (kept.reshape(4000, -1) == kept[:, :1, :1, :1, :1].reshape(4000, 1)).all()
    assert abs((kept[:, 0, 0, 0, 0] > 0).mean() - 0.75) < 0.03


def test_vmap_over_folds_matches_per_fold_calls_and_bfloat16_is_close(small):
    graphdef, state, evaluate = small
    states = [state, jax.tree.map(lambda p: np.asarray(p) * 1.5 + 0.01, state)]   # two folds' parameters
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *states)
    x = jax.random.normal(jax.random.key(3), (2,) + SMALL_INPUT)
    apply = lambda s, xs: nnx.merge(graphdef, s)(xs, train=False)
    folded = jax.jit(jax.vmap(apply))(stacked, x)
    for fold in range(2):
        np.testing.assert_allclose(folded[fold], evaluate(states[fold], x[fold]), rtol=1e-5, atol=1e-5)
    # bfloat16 compute (softmax in float32) stays close to float32.
    half = nnx.eval_shape(lambda: SwinTransformer(**SMALL, drop_path_rate=0.5, rngs=nnx.Rngs(0)))
    out = forward(nnx.graphdef(set_compute_dtype(half, jnp.bfloat16)), train=False)(state, x[0])
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32), evaluate(state, x[0]), atol=0.15)
