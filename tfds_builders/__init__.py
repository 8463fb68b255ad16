"""TFDS builders of mer_jax's corpora; importing this package registers them with TFDS."""
from tfds_builders import synthetic_me  # noqa: F401  (registers `synthetic_me`)
from tfds_builders import precomputed_flow  # noqa: F401  (registers `precomputed_flow`)
from tfds_builders import smic  # noqa: F401  (registers `smic`)
from tfds_builders import samm  # noqa: F401  (registers `samm`)
from tfds_builders import mmew  # noqa: F401  (registers `mmew`)
from tfds_builders import casme_sq  # noqa: F401  (registers `casme_sq`)
from tfds_builders import casme2  # noqa: F401  (registers `casme2`)
from tfds_builders import casme3  # noqa: F401  (registers `casme3`)
from tfds_builders import casme  # noqa: F401  (registers `casme`)
from tfds_builders import megc2019_cde  # noqa: F401
