"""TFDS builders of mer_jax's corpora; importing this package registers them with TFDS."""
from tfds_builders import synthetic_me  # noqa: F401  (registers `synthetic_me`)
