"""`synthetic_me`: the built-in synthetic micro-expression corpus (generated, no download)."""
from tfds_builders.synthetic_me.synthetic_me_dataset_builder import Builder

__all__ = ["Builder"]
