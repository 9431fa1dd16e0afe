"""Screening generated images against registered protected works.

The front door is small::

    from screener import Screener
    with Screener.open("screener-data") as s:
        s.registry.register("bridge", ["bridge.jpg"], title="Bridge")
        print(s.check("generated.png").decision)
"""

from screener.core.errors import ScreenerError
from screener.core.settings import Settings
from screener.core.verdict import Match, Verdict
from screener.matching.pipeline import Registered, Registry, Screener

__all__ = ["Match", "Registered", "Registry", "Screener", "ScreenerError", "Settings", "Verdict"]
