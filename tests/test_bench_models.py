"""`python -m mer_jax.bench models`: one row per network with our and the paper's figures."""
import pytest

from mer_jax import bench
from mer_jax.models.paper_figures import PAPER_FIGURES


@pytest.mark.slow   # ~20 s of compiling (init, train step, FLOP count): kept out of the default run
def test_model_row_and_table_for_ststnet():
    row = bench._model_row("ststnet", latency_repeats=2, train_repeats=1)
    assert row["params"] == 1683 and row["paper"] == PAPER_FIGURES["ststnet"] and row["formula"] is None
    assert 0.5 * 0.448e6 < row["flops"] < 4 * 0.448e6
    assert row["latency_ms"] > 0 and row["train_samples_per_s"] > 0 and row["batch"] == 256
    table = bench._models_table([row], "cpu")
    assert "| ststnet | 28x28 | 0.001683 | 0.00167 |" in table and "Adaptive DSTNet Table 9" in table


def test_table_sets_a_papers_complexity_formula_against_xla():
    """MADV-Net's Eq. 24-25 (models/madvnet.py complexity_terms) next to XLA's count, as bench models prints it."""
    row = {"name": "madvnet", "input": "112x112", "params": 25.48e6, "paper": PAPER_FIGURES["madvnet"],
           "flops": 3.855e9, "latency_ms": 1.0, "train_samples_per_s": 2.0, "batch": 64,
           "formula": {"paper": 1.562e9, "omitted": 0.311e9}}
    table = bench._models_table([row, {**row, "name": "ststnet", "formula": None}], "cpu")
    assert "| madvnet | 1562 | 311 | 1927.5 | 1.234 | 1.029 |" in table
    assert "| ststnet | 1562" not in table
