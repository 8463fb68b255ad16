"""Test session set-up: 2 simulated CPU devices, a private TFDS data dir and feature cache."""
import os
import tempfile

import jax

# Must happen before any device is touched: lets sharding tests build ('fold', 'data') meshes on CPU.
jax.config.update("jax_num_cpu_devices", 2)
# Identical programs compiled by several tests are compiled once.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="mer_jax_jit_cache_"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A TFDS data dir for the session; the feature cache goes next to it."""
    root = tmp_path_factory.mktemp("mer_jax")
    os.environ["MER_JAX_CACHE"] = str(root / "cache")
    return str(root / "tensorflow_datasets")


# The slowest files first: the two xdist workers each take whole files (--dist loadfile, pyproject.toml), so
# the last long file to start decides when the run ends. Measured with --durations on 2 cores; the rest keep
# their order.
_SLOWEST_FIRST = ("test_experiment.py", "test_dstnet_end_to_end.py", "test_analysis.py", "test_colab_notebook.py",
                  "test_corpus_end_to_end.py", "test_madvnet_end_to_end.py", "test_dfrnet.py", "test_edmdbn.py",
                  "test_magnifier.py", "test_madvnet.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(_SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: a file's tests keep their order
