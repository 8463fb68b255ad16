"""`casme`: CASME (I) from the user's licensed copy (manual_dir), one split per subject."""
from tfds_builders.casme.casme_dataset_builder import Builder, read_records

__all__ = ["Builder", "read_records"]
