"""The tinyharness conformance kit run against acme-npu: one test per rule of the SUT contract.

'pytest' runs it once the package is installed ('pip install -e .'); 'tinyharness plugins check
acme-npu' runs the same checks from the command line.
"""

from tinyharness.testing import SUTConformance


class TestAcmeNpu(SUTConformance):
    sut = "acme-npu"
    benchmark = "digits01"  # embedded in tinyharness: nothing to download
    options = {}  # --sut-option values to check with, e.g. {"optimization": "basic"}
    reference = "onnxruntime-cpu"  # a SUT whose outputs on the same model this one's must equal
