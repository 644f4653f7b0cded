"""The typed run model: summary sections, invalid reasons, readers and renderers."""

from .reasons import Reason, ReasonCode
from .summary import SCHEMA_VERSION, Measurement, RunSummary

__all__ = ["SCHEMA_VERSION", "Measurement", "Reason", "ReasonCode", "RunSummary"]
