"""`casme3`: CAS(ME)^3 Part A micro-expressions read from the user's licensed copy (manual download)."""
from tfds_builders.casme3.casme3_dataset_builder import Builder, Casme3Config, read_annotations, read_records

__all__ = ["Builder", "Casme3Config", "read_annotations", "read_records"]
