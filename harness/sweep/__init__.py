"""Sweeps: a matrix of runs (benchmarks x SUTs x SUT options x scenarios x modes x models x
boards), each cell a ``tinyharness run`` in a child process of its own, recorded in the results
database as it finishes and resumable (docs/sweeps.md).

:mod:`.spec` (cells and the TOML), :mod:`.matrix` (the product, excludes and includes),
:mod:`.cell_run` (one cell in a child process), :mod:`.local` (the local executor),
:mod:`.driver` (resume, recording), :mod:`.table` (the table, CSV and gates). Nothing is imported
here: ``tinyharness --help`` stays light.
"""
