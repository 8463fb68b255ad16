"""The built-in synthetic micro-expression corpus: procedural faces, FACS action units, nuisances.

Real MER corpora are licensed; this corpus behaves like one (subjects, imbalanced emotions, partial
AU prototypes, micro-size motion, onset/apex/offset, depth) so every run and test works without one.
The TFDS builder `synthetic_me` (tfds_builders/) stores it in the shared schema.
"""
from mer_jax.data.synthetic.clips import generate_corpus, generate_sample, generate_subject, subject_id
from mer_jax.data.synthetic.config import DEFAULT, SMOKE, SyntheticConfig

__all__ = ["DEFAULT", "SMOKE", "SyntheticConfig", "generate_corpus", "generate_sample", "generate_subject",
           "subject_id"]
