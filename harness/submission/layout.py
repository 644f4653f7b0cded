"""Names of an MLPerf Tiny submission tree, shared by the packager and the checker
(docs/mlperf-tiny-rules.md §9.1). A module of its own so that neither has to import the other
for them."""

from __future__ import annotations

import re

SHORT = {"kws01": "kws", "vww01": "vww", "ic01": "ic", "ic02": "ic2", "ad01": "ad"}  # benchmark -> folder
BENCHMARK_OF = {short: bench for bench, short in SHORT.items()}
TESTS = ("accuracy", "performance")  # the tests MLPerf Tiny requires per model
TEST_FILES = ("log.txt", "results.json", "results.txt")  # exactly these in a test folder
EMBEDDED = "tinyharness"  # <division>/<submitter>/tinyharness/<system>/<model>/<run>/
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # no spaces: the MLCommons checker warns on them
