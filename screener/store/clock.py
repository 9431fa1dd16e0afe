"""The one clock the stores stamp rows with: timezone-aware UTC, never naive local time.

Written once because the catalog, the check records, the audit log and the key store each
had a copy; a store that must be told the time (the audit log, in tests) takes a clock
argument and defaults to this one.
"""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """The current moment in UTC."""
    return dt.datetime.now(dt.UTC)
