"""Evaluation: pooled held-out metrics (`metrics`) and the run report (`report`)."""
