"""Open a finished run in a notebook: load it, restore its folds' models, predict (this module), plot
(mer_jax.analysis.plots) and explain (mer_jax.analysis.explain: Grad-CAM, EDMDBN token attention, MADV-Net rollout)."""
from mer_jax.analysis.run import Clips, Run, load_run, predict, predict_arrays

__all__ = ["Clips", "Run", "load_run", "predict", "predict_arrays"]
