"""`casme_sq`: CAS(ME)^2 micro-expressions read from the user's licensed copy (manual download)."""
from tfds_builders.casme_sq.casme_sq_dataset_builder import Builder, read_annotations, read_records

__all__ = ["Builder", "read_annotations", "read_records"]
