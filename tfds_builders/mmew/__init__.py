"""`mmew`: MMEW micro-expressions read from the user's licensed copy (manual download)."""
from tfds_builders.mmew.mmew_dataset_builder import Builder, read_records

__all__ = ["Builder", "read_records"]
