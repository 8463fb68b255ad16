"""Fixture archives: the synthetic corpus written in the exact on-disk layout of each licensed corpus.

One module per corpus writes folder names, frame file names (with each corpus's padding), image
formats and annotation files (xlsx/csv with the real header strings, preamble rows and known quirks)
so the corpus builders in `tfds_builders/` can be built and tested without any licensed data.
`common` holds what the writers share.
"""
