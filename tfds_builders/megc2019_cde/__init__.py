"""`megc2019_cde`: the MEGC2019 composite (SMIC-HS + CASME II + SAMM), membership from the official ground truth."""
from tfds_builders.megc2019_cde.megc2019_cde_dataset_builder import Builder

__all__ = ["Builder"]
