"""A conformance kit for SUT plugins, for a plugin author's own test suite and for
``tinyharness plugins check``::

    from tinyharness.testing import SUTConformance, check_sut, CheckResult

    class TestAcmeNPU(SUTConformance):     # one pytest test per rule
        sut = "acme-npu"

    results = check_sut("acme-npu")         # list[CheckResult], one per rule

The rules are listed in :mod:`tinyharness.testing.kit`; each checks one part of the SUT contract
of :mod:`tinyharness.sut`. Importing this package imports no runtime and not pytest.
"""

from .kit import RULES, SUTConformance, check_sut, run_rule
from .subject import CheckResult, Subject

__all__ = ["CheckResult", "RULES", "SUTConformance", "Subject", "check_sut", "run_rule"]
