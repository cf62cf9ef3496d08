"""From finished runs to verdicts, claims, figures, reports, data frames and the site. Imports every layer
below (leaves, store, engine, catalog, runs). ``benchmark.results.runs/epochs/cells/CELL_COLUMNS`` (the
Python API of docs/CONTRACTS.md) load frames.py, with pandas, only when first used."""


def __getattr__(name):
    if name in ("runs", "epochs", "cells", "CELL_COLUMNS"):
        from . import frames
        return getattr(frames, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
