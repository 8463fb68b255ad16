"""`python -m mer_jax.bench models`: one row per network with our and the paper's figures."""
import pytest

from mer_jax import bench
from mer_jax.models.paper_figures import PAPER_FIGURES


@pytest.mark.slow   # ~20 s of compiling (init, train step, FLOP count): kept out of the default run
def test_model_row_and_table_for_ststnet():
    row = bench._model_row("ststnet", latency_repeats=2, train_repeats=1)
    assert row["params"] == 1683 and row["paper"] == PAPER_FIGURES["ststnet"]
    assert 0.5 * 0.448e6 < row["flops"] < 4 * 0.448e6
    assert row["latency_ms"] > 0 and row["train_samples_per_s"] > 0 and row["batch"] == 256
    table = bench._models_table([row], "cpu")
    assert "| ststnet | 28x28 | 0.001683 | 0.00167 |" in table and "Adaptive DSTNet Table 9" in table
