"""User text, checked one way everywhere: one definition of the characters it may not hold.

Before this module the desk, the appeals, the key store, the audit log and the labels each
had a check of their own, and they disagreed (one let DEL and C1 controls through, another
let a lone surrogate reach the database, a third refused only NUL). A name that one layer
accepted could then be refused by the next, halfway through a duty.

A character is *refused* in user text when it is one of:

- a C0 control, U+0000 to U+001F, except the layout characters TAB, LF and CR in a field
  that allows them (a note or a statement may have lines; a name, an owner or an id may not);
- DEL, U+007F, or a C1 control, U+0080 to U+009F (terminals act on them; U+0085 breaks lines);
- a lone surrogate, U+D800 to U+DFFF (JSON can escape half a UTF-16 pair; it is not text,
  UTF-8 cannot encode it and databases refuse it);
- a bidirectional embedding, override or isolate: U+202A to U+202E and U+2066 to U+2069
  (they reorder what a reviewer reads, the "Trojan Source" trick); the plain marks LRM, RLM
  and ALM (U+200E, U+200F, U+061C) stay allowed, as does right-to-left text itself;
- a noncharacter: U+FDD0 to U+FDEF and the last two code points of every plane (U+FFFE,
  U+FFFF, U+1FFFE, ...), which Unicode keeps for internal use.

Everything else is allowed: letters of every script, spaces, emoji, joiners (ZWJ, ZWNJ) and
format marks other than the bidirectional controls above.
"""

from __future__ import annotations

from screener.core.errors import InputError

# The layout characters a field may allow, as a set of them: ONE_LINE allows none.
ONE_LINE = ""
LINES = "\t\n\r"

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def refused_character(value: str, allow: str = ONE_LINE) -> str | None:
    """The first character of ``value`` that user text may not hold, or None.

    ``allow`` names the layout characters (a subset of :data:`LINES`) this field takes."""
    if not set(allow) <= set(LINES):
        raise ValueError(f"only TAB, LF and CR can be allowed, not {allow!r}")
    for ch in value:
        code = ord(ch)
        if code < 0x20:
            if ch in allow:
                continue
            return ch
        if (
            0x7F <= code <= 0x9F
            or 0xD800 <= code <= 0xDFFF
            or ch in _BIDI_CONTROLS
            or _is_noncharacter(code)
        ):
            return ch
    return None


def check_text(
    name: str,
    value: object,
    limit: int,
    *,
    allow: str = ONE_LINE,
    blank: bool = False,
    error: type[InputError] = InputError,
) -> str:
    """``value`` itself when it is acceptable user text for the field ``name``; else ``error``.

    Acceptable: a string of at most ``limit`` characters, not blank (empty or only
    whitespace) unless ``blank``, holding no refused character (see the module docstring)
    other than the layout characters in ``allow``."""
    if not isinstance(value, str):
        raise error(f"{name} must be a string, not {type(value).__name__}")
    if not blank and not value.strip():
        raise error(f"{name} must not be empty")
    if len(value) > limit:
        raise error(f"{name} is longer than {limit} characters")
    ch = refused_character(value, allow)
    if ch is None:
        return value
    if 0xD800 <= ord(ch) <= 0xDFFF:
        raise error(f"{name} is not valid Unicode text (a lone surrogate, U+{ord(ch):04X})")
    raise error(f"{name} contains a control or invalid character (U+{ord(ch):04X})")
