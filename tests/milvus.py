"""The throwaway Milvus server of the tests: :class:`screener.bench.milvus_server.LocalMilvus`
(the wheel's server in a temporary directory, every port free on 127.0.0.1), which the
lookup benchmark starts too; ``conftest.py`` starts one per session."""

from __future__ import annotations

from screener.bench.milvus_server import LocalMilvus, MilvusStartError, MilvusUnavailable


class MilvusTestServer(LocalMilvus):
    """:class:`LocalMilvus` that serves flushed segments promptly (see ``prompt_handoff``)."""

    def __init__(self) -> None:
        super().__init__(prompt_handoff=True)


__all__ = ["MilvusStartError", "MilvusTestServer", "MilvusUnavailable"]
