"""`precomputed_flow`: shared 28 x 28 flow images (u, v, strain) with a MEGC2019-style label CSV."""
from tfds_builders.precomputed_flow.precomputed_flow_dataset_builder import Builder

__all__ = ["Builder"]
