"""Screening generated images against registered protected works.

The front door is small::

    from screener import Screener
    with Screener.open("screener-data") as s:
        s.registry.register("bridge", ["bridge.jpg"], title="Bridge")
        print(s.check("generated.png").decision)
"""

from screener.errors import ScreenerError
from screener.screening import Registered, Registry, Screener
from screener.settings import Settings
from screener.verdict import Match, Verdict

__all__ = ["Match", "Registered", "Registry", "Screener", "ScreenerError", "Settings", "Verdict"]
