"""MLPerf Tiny submission packages: building them, checking them, and their system descriptions."""
