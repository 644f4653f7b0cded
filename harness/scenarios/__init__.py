"""Passes over the QSL with MLPerf LoadGen's semantics, one per module, one interface (base.Pass):
accuracy, single-stream, offline, and the MLPerf Tiny windows (host or device clock)."""
