"""`smic`: SMIC-HS / VIS / NIR read from the user's licensed copy (manual download)."""
from tfds_builders.smic.smic_dataset_builder import Builder, read_records

__all__ = ["Builder", "read_records"]
