"""Scenarios (MLPerf LoadGen semantics): single-stream, offline, and the accuracy pass."""
