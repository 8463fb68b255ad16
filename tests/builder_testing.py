"""Set-up shared by the corpus-builder tests (tests/test_builder_*.py, tests/test_corpus_builder.py).

A plain module, imported as `import builder_testing`: pytest puts tests/ (which holds conftest.py and
no __init__.py) on sys.path.
"""
import collections
import dataclasses
import shutil
import tempfile

import tensorflow_datasets as tfds

from mer_jax.data.corpus import _keep_encoded, load_corpus


def build(builder_class, manual_dir, data_dir, config, **overrides):
    """Build `config` (a config or its name) of `builder_class` from `manual_dir` into `data_dir` as
    ArrayRecord, and return the builder. With `overrides`, a copy of the config with those fields
    changed is built, named `<name>_test` unless `name` is among them."""
    if isinstance(config, str):
        config = next(c for c in builder_class.BUILDER_CONFIGS if c.name == config)
    if overrides:
        config = dataclasses.replace(config, **{"name": f"{config.name}_test", **overrides})
    builder = builder_class(config=config, data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare(file_format="array_record",
                                 download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def load_built(name, root):
    """Build `name` (`corpus/config`) from root/manual into root/data through `load_corpus`, as a run
    does; returns (corpus, builder)."""
    corpus = load_corpus(name, data_dir=str(root / "data"), manual_dir=str(root / "manual"))
    return corpus, tfds.builder(name, data_dir=str(root / "data"))


def examples(builder) -> dict:
    """clip id -> (split, example) of every stored example, frames left encoded."""
    out = {}
    for split, source in builder.as_data_source(decoders={"frames": _keep_encoded()}).items():
        for i in range(len(source)):
            example = source[i]
            out[example["clip"].decode()] = (split, example)
    return out


def fixes_by_clip(builder) -> dict[str, list[str]]:
    """The recorded quirk fixes (`info.metadata["fixes"]`) by clip id."""
    fixes = collections.defaultdict(list)
    for fix in builder.info.metadata["fixes"]:
        fixes[fix["clip"]].append(fix["fix"])
    return fixes


def set_cell(path, row: int, column: int, value, *, sheet: str | None = None) -> None:
    """Set one cell (1-based row and column) of an xlsx workbook, on `sheet` or the active sheet."""
    import openpyxl

    book = openpyxl.load_workbook(path)
    (book[sheet] if sheet else book.active).cell(row=row, column=column, value=value)
    book.save(path)


def edit_cell(path, clip: str, column: str, value) -> None:
    """Set the `column` cell of the row whose second cell (Filename) is `clip`, on the active sheet
    of an xlsx workbook whose header row starts with `Subject` (after any preamble rows)."""
    import openpyxl

    book = openpyxl.load_workbook(path)
    sheet = book.active
    header_row = next(r for r in sheet.iter_rows() if r[0].value == "Subject")
    col = next(c.column for c in header_row if c.value == column)
    row = next(r for r in sheet.iter_rows() if r[1].value == clip)
    sheet.cell(row=row[0].row, column=col, value=value)
    book.save(path)


class FixtureExampleDir:
    """Mixin for a `tfds.testing.DatasetBuilderTestCase`: `write_fixture(folder)` writes a fixture
    archive into a temporary EXAMPLE_DIR for the class, removed afterwards. List it first:
    `class T(builder_testing.FixtureExampleDir, tfds.testing.DatasetBuilderTestCase)`."""

    @staticmethod
    def write_fixture(folder: str) -> None:
        raise NotImplementedError("a FixtureExampleDir test case defines write_fixture with its corpus's fixture "
                                  "writer (mer_jax/data/synthetic/archives/)")

    @classmethod
    def setUpClass(cls):
        cls._fixture_dir = tempfile.mkdtemp(prefix=f"{cls.DATASET_CLASS.name}_dummy_")
        cls.write_fixture(cls._fixture_dir)
        cls.EXAMPLE_DIR = cls._fixture_dir
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls._fixture_dir, ignore_errors=True)
