"""tinyharness SUT plugin: acme-npu (the entry point is plugin.py, the SUT is in sut.py)."""
