"""The results database: every run indexed in SQLite (the run directory stays the record, and the
index can be rebuilt from run directories), and the sweeps with the result of each cell.

Only :mod:`.store` and what it needs load here; sqlite3 is in the standard library.
"""

from .query import Filters, parse_query
from .store import ResultsDB, default_db_path

__all__ = ["Filters", "ResultsDB", "default_db_path", "parse_query"]
