"""The one hierarchy of errors the screener raises.

The CLI maps each class to an exit code and the HTTP service to a status code, each in one
place; the ``code`` attribute is a stable machine-readable name for clients.
"""

from __future__ import annotations


def quote(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters: error messages never
    echo a caller's input whole."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 5] + "...'"


def is_plain_id(value: object, limit: int = 200) -> bool:
    """A string that could name a stored object: 1..limit characters, no control ones.
    Anything else names nothing (and some databases refuse it outright, e.g. NUL)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= limit
        and not any(ch < " " or ch == "\x7f" for ch in value)
    )


class ScreenerError(Exception):
    """Base class of every error the screener raises on purpose."""

    code = "screener_error"


class InputError(ScreenerError):
    """The caller's input is wrong (maps to a 4xx)."""

    code = "bad_input"


class DecodeError(InputError):
    """Image bytes could not be turned into pixels."""

    code = "decode_error"


class EmptyImage(DecodeError):
    code = "empty_image"


class UnsupportedFormat(DecodeError):
    code = "unsupported_format"


class CorruptImage(DecodeError):
    code = "corrupt_image"


class ImageTooLarge(DecodeError):
    """Too many bytes, or too many pixels (a decompression bomb)."""

    code = "image_too_large"


class UnreadableFile(DecodeError):
    """An image file is missing or cannot be read (the message names the path)."""

    code = "unreadable_file"


class NotFound(InputError):
    code = "not_found"


class Conflict(InputError):
    code = "conflict"


class NotRegistrable(InputError):
    """A reference image has too little content to be a protected work (a flat colour, a
    few pixels, a gradient): matching it would claim every plain output. ``findings``
    names each rule broken, its measured value and the policy's threshold."""

    code = "not_registrable"

    def __init__(self, message: str, findings: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.findings = findings or []


class LabelError(InputError):
    """An AI-content label is invalid: a bad field given to write, or a malformed one read."""

    code = "label_error"


class PolicyError(InputError):
    """A policy file is missing, malformed or inconsistent."""

    code = "invalid_policy"


class InvalidThresholds(InputError):
    """Review/block bands out of order or outside 0..1 (maps to 422)."""

    code = "invalid_thresholds"


class ConfigurationError(ScreenerError):
    """Settings ask for something this installation cannot do (maps to start-up failure)."""

    code = "configuration_error"


class SignalUnavailable(ConfigurationError):
    """A required signal's model or package is missing."""

    code = "signal_unavailable"


class IndexInconsistent(ScreenerError):
    """An index disagrees with the catalog in a way catch-up could not repair."""

    code = "index_inconsistent"


class AuthError(ScreenerError):
    """No credentials, or credentials that are malformed, unknown or revoked (maps to 401).

    The message never says which, so a caller learns nothing about the keys that exist.
    """

    code = "unauthorized"


class Forbidden(ScreenerError):
    """Valid credentials that may not do this (maps to 403)."""

    code = "forbidden"
