"""tinyharness: an MLPerf-Tiny-style benchmark harness for tiny ML models."""

__version__ = "0.1.0"
