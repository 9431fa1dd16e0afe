"""Two `screener serve` processes sharing one PostgreSQL catalog and one Milvus server.

This is the scaled-out layout of docs/deploy.md on one machine: each instance has its own
data directory and uvicorn process, and both point at the same catalog
(``SCREENER_DATABASE_URL``) and the same Milvus (``SCREENER_INDEX_BACKEND=milvus``). A
work registered through one instance must be matched by a check on the other within
``VISIBILITY_BOUND_S`` (the bound documented in docs/deploy.md; in practice the first
check already matches, because an instance that sees new catalog entries reads Milvus
with Strong consistency before it searches), and deleting it through either must stop
matches on both.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from screener.core.samples import scene
from tests.service.conftest import encode
from tests.service.test_process import KEYS, Server, bearer, make_keys, new_server, servers

__all__ = ["servers"]

pytestmark = pytest.mark.slow

#: docs/deploy.md: a registration acknowledged by one instance is matched by checks
#: started on any other instance at most this long afterwards.
VISIBILITY_BOUND_S = 5.0


def check_until(
    server: Server, key: str, image: bytes, want: str | None, bound: float
) -> tuple[dict[str, Any], float]:
    """Check ``image`` on ``server`` until its top work is ``want`` (None: no match) or
    ``bound`` seconds pass; the last result and the seconds it took."""
    start = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        while True:
            response = client.post(
                "/v1/check",
                headers=bearer(key),
                files=[("images", ("q.jpg", image, "image/jpeg"))],
            )
            assert response.status_code == 200, response.text
            (result,) = response.json()["results"]
            elapsed = time.monotonic() - start
            if result["verdict"]["top_work_id"] == want or elapsed > bound:
                return result, elapsed
            time.sleep(0.1)


def test_works_registered_or_deleted_anywhere_are_seen_everywhere(
    tmp_path: Path,
    servers: list[Server],
    postgres_url: str,
    milvus_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCREENER_DATABASE_URL", postgres_url)
    monkeypatch.setenv("SCREENER_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("SCREENER_MILVUS_URI", milvus_uri)
    monkeypatch.setenv("SCREENER_MILVUS_COLLECTION_PREFIX", f"multi_{uuid.uuid4().hex[:8]}")
    base = tmp_path
    keys = make_keys(base / "a", KEYS)  # the keys live in the shared catalog
    a = new_server(servers, base / "a", "a")
    b = new_server(servers, base / "b", "b")

    works = {"ultraman": scene(9101), "medusa": scene(9102)}
    copies = {name: encode(image, "JPEG", quality=80) for name, image in works.items()}
    unrelated = encode(scene(9103), "JPEG", quality=80)

    # Both instances answer "no match" before anything is registered.
    for server in (a, b):
        result, _ = check_until(server, keys["platform"], copies["ultraman"], None, 0)
        assert result["decision"] == "allow"

    delays = []
    for name, (writer, reader) in {"ultraman": (a, b), "medusa": (b, a)}.items():
        with httpx.Client(base_url=writer.url, timeout=60) as client:
            made = client.post(
                "/v1/works",
                headers=bearer(keys["holder"]),
                data={"work_id": name, "title": name.title()},
                files=[("images", (f"{name}.png", encode(works[name]), "image/png"))],
            )
            assert made.status_code == 201, made.text
        result, took = check_until(reader, keys["platform"], copies[name], name, VISIBILITY_BOUND_S)
        assert result["verdict"]["top_work_id"] == name, (took, result)
        assert result["decision"] == "block", result
        delays.append(took)
    # Both works are visible on both instances; the unrelated image matches nothing.
    for server in (a, b):
        for name in works:
            result, _ = check_until(server, keys["platform"], copies[name], name, 0)
            assert result["verdict"]["top_work_id"] == name
        result, _ = check_until(server, keys["platform"], unrelated, None, 0)
        assert result["decision"] == "allow"

    with httpx.Client(base_url=b.url, timeout=60) as client:
        gone = client.delete("/v1/works/ultraman", headers=bearer(keys["holder"]))
        assert gone.status_code == 200, gone.text
        assert gone.json()["fingerprints_removed"] > 0
    for server in (a, b):
        result, took = check_until(
            server, keys["platform"], copies["ultraman"], None, VISIBILITY_BOUND_S
        )
        assert result["verdict"]["top_work_id"] is None, (took, result)
        assert result["decision"] == "allow"
        delays.append(took)
        still, _ = check_until(server, keys["platform"], copies["medusa"], "medusa", 0)
        assert still["verdict"]["top_work_id"] == "medusa"
    print(f"visibility delays across instances (s): {[round(d, 2) for d in delays]}")

    a.stop()
    b.stop()
