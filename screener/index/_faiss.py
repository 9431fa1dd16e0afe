"""The faiss module, typed as ``Any``.

faiss-cpu ships a partial ``__init__.pyi`` that omits much of the SWIG surface this package
uses (``SearchParametersHNSW``, ``IndexBinaryMultiHash.nhash``, keyword construction of
search parameters). Importing faiss through here keeps ``mypy --strict`` honest about our
own code without pretending those stubs describe the library.
"""

from typing import Any

import faiss as _faiss

faiss: Any = _faiss
