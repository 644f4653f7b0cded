"""tinyharness's reference documents (Markdown), shipped in the wheel: ``tinyharness docs``."""
