"""Index backends registered by name, and the one factory string that picks one.

Like fingerprinters, each backend registers itself where it is written (``numpy_ref``,
``faiss_backend``, ``milvus``): how to make an empty index of a structure and how to
reopen one from its saved manifest. A structure is described by one string, the backend's
name, a colon and the backend's own structure, after the FAISS index factory:
``faiss:IVF1024,Flat``, ``faiss:Flat``, ``milvus:HNSW``, ``numpy``. A string without a
registered backend before its colon is a FAISS factory string or ``auto``, as settings
have always written it (``Flat``, ``IVF16,Flat``, ``BFlat``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from screener.index.base import Manifest, VectorIndex

DEFAULT_BACKEND = "faiss"
AUTO = "auto"

Make = Callable[..., VectorIndex]
Restore = Callable[[Manifest, dict[str, Any], dict[str, Any]], VectorIndex]


@dataclass(frozen=True)
class Backend:
    """How one backend makes and reopens its indexes.

    ``make(spec, structure, expected_size=..., **params)`` builds an empty index (``structure``
    is the part after the colon, ``auto`` when empty); ``restore(manifest, arrays, options)``
    reopens a saved one whose manifest kind starts with the backend's name. ``shared``: the
    index lives on a server that several instances share (Milvus), not in a local file.
    """

    name: str
    make: Make
    restore: Restore
    shared: bool = False


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, *, make: Make, restore: Restore, shared: bool = False) -> None:
    """Register the backend ``name`` (a lower-case word: it starts factory strings)."""
    if not (name.isidentifier() and name.islower()):
        raise ValueError(f"backend name {name!r} must be one lower-case word")
    _BACKENDS[name] = Backend(name, make, restore, shared)


def unregister_backend(name: str) -> None:
    """Forget the backend ``name`` (a test's own backend, once it is done)."""
    _BACKENDS.pop(name, None)


def backend(name: str) -> Backend:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown index backend {name!r}; known: {', '.join(sorted(_BACKENDS))}"
        ) from None


def backend_names() -> list[str]:
    return sorted(_BACKENDS)


def parse(description: str) -> tuple[str, str]:
    """``(backend, structure)`` for a factory string: ``milvus:HNSW`` -> ``("milvus",
    "HNSW")``, ``faiss:IVF1024,Flat`` -> ``("faiss", "IVF1024,Flat")``, ``milvus`` ->
    ``("milvus", "auto")``, ``IVF16,Flat`` -> ``("faiss", "IVF16,Flat")``.

    Raises ``ValueError`` for an empty string or an unknown backend name before a colon.
    """
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"an index structure must be a non-empty string, got {description!r}")
    head, colon, rest = description.partition(":")
    if head in _BACKENDS:
        return head, rest.strip() or AUTO
    if colon and head.isidentifier() and head.islower():
        backend(head)  # raises, naming the known backends
    return DEFAULT_BACKEND, description


def describe(name: str, structure: str) -> str:
    """The factory string of ``structure`` on backend ``name`` (the inverse of `parse`)."""
    return f"{name}:{structure}"
