"""Serial DUTs: the MLPerf Tiny / EEMBC serial protocol, host side and a firmware emulator."""
