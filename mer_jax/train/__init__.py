"""Fold-parallel training: losses, state, steps, sharding, checkpoints and the loop."""
