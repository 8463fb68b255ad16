"""Open a finished run in a notebook: load it, restore its folds' models, predict, plot (mer_jax.analysis.plots)."""
from mer_jax.analysis.run import Clips, Run, load_run, predict, predict_arrays

__all__ = ["Clips", "Run", "load_run", "predict", "predict_arrays"]
