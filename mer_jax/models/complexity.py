"""Parameter and FLOP counts, to set against the complexity tables of the papers."""
from __future__ import annotations

import jax
from flax import nnx


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars (nnx.Param); BatchNorm running statistics are not counted."""
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def flops_per_sample(model: nnx.Module, inputs: dict) -> float:
    """Inference FLOPs of one sample: XLA's count for the lowered (not yet optimised) eval-mode call.

    FLOPs, not multiply-accumulates: a multiply-add counts 2. Element-wise work (BatchNorm, ReLU,
    residual adds) is included; multiply-adds on a convolution's zero padding are not, so the count is
    below the dense 2 x MACs that PyTorch counters (thop, ptflops) report. `inputs` is an example batch (arrays or jax.ShapeDtypeStruct) of any
    batch size; only shapes and dtypes are used, at batch size 1.
    """
    graphdef, state = nnx.split(model)
    one = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype), inputs)
    forward = lambda state, inputs: nnx.merge(graphdef, state)(inputs, train=False)
    return float(jax.jit(forward).lower(state, one).cost_analysis()["flops"])
