"""The API against its own OpenAPI schema: schemathesis generates requests for every
operation (valid and invalid, with the auth varied too) and checks that none is answered
with a server error and that every response matches the schema the app publishes.

In-process (ASGI, no network), on SQLite. Schemathesis calls the app through `PROXY`,
which forwards to the app the `running` fixture started (models, catalog, keys) and
answers lifespan events itself, so the app starts once.

The deterministic test at the end covers what random input seldom reaches: the success
responses of operations that need real ids or real images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.types import ASGIApp, Receive, Scope, Send

from screener.core.samples import scene
from screener.service.app import create_app
from screener.service.settings import ServiceSettings
from screener.store.catalog import NewHeld
from tests.service.conftest import Service, encode, files, running_service

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, response_schema_conformance]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class Proxy:
    """The ASGI app schemathesis calls: forwards each request to ``target`` and answers
    lifespan events itself (the fixture's TestClient owns the real start-up)."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.target is not None, "the `running` fixture sets the app"
        await self.target(scope, receive, send)


PROXY = Proxy()
# The schema as the app publishes it; building the app loads nothing (no models, no database).
schema = schemathesis.openapi.from_dict(create_app(ServiceSettings()).openapi())
schema.app = PROXY


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("schema")) as service:
        PROXY.target = service.app
        try:
            yield service
        finally:
            PROXY.target = None


def auth(running: Service, who: str) -> dict[str, str]:
    """Both ways of sending the key: schemathesis fills in both, and the app reads
    X-API-Key first, so a generated one would otherwise stand in for the real key."""
    return {**running.h(who), "X-API-Key": running.keys[who]}


@schema.parametrize()
@FUZZ
def test_every_operation_as_admin(case: Any, running: Service) -> None:
    case.call_and_validate(headers=auth(running, "admin"), checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_every_operation_as_operator(case: Any, running: Service) -> None:
    """An operator key: everything but key management (403)."""
    case.call_and_validate(headers=auth(running, "operator"), checks=CHECKS)


@schema.include(tag=["checks", "labels", "works", "notices"]).parametrize()
@FUZZ
def test_holder_operations_as_rights_holder(case: Any, running: Service) -> None:
    """A rights holder's key: its works and notices, the checks that matched them, labels;
    checks and thresholds answer 403 to it."""
    case.call_and_validate(headers=auth(running, "holder"), checks=CHECKS)


@schema.include(tag=["checks", "labels", "works", "notices"]).parametrize()
@FUZZ
def test_platform_operations_as_platform(case: Any, running: Service) -> None:
    """A platform key: checks and labels are its own; works and notices answer 403 to it."""
    case.call_and_validate(headers=auth(running, "platform"), checks=CHECKS)


# success responses -------------------------------------------------------------------------


def validate(path: str, method: str, response: httpx.Response) -> None:
    """``response`` matches the schema of ``method path`` (and is no server error)."""
    response.request.read()  # a multipart body is a stream; the checks read it back
    case = schema[path][method].Case()
    case.validate_response(response, checks=CHECKS)


def test_success_responses_match_the_schema(running: Service) -> None:
    client, h = running.client, running.h
    original = scene(7001, (256, 192))
    seen: list[tuple[str, str, int]] = []

    def call(who: str, method: str, template: str, path: str, **kwargs: Any) -> Any:
        response = client.request(method, path, headers=h(who), **kwargs)
        assert response.is_success, (method, path, response.text)
        validate(template, method, response)
        seen.append((method, template, response.status_code))
        return response.json() if "json" in response.headers["content-type"] else None

    made = call(
        "holder",
        "POST",
        "/v1/works",
        "/v1/works",
        data={
            "work_id": "schema-work",
            "title": "Schema",
            "aliases": ["one", "two"],
            "related_terms": ["glass tower", "red scarf"],
        },
        files=files(encode(original)),
    )
    reference = made["references_added"][0]
    screened = call(
        "platform",
        "POST",
        "/v1/prompt",
        "/v1/prompt",
        json={"prompt": "S c h e m a with a red scarf", "user_ref": "u1"},
    )
    assert screened["matches"][0]["work_id"] == "schema-work"
    call("holder", "GET", "/v1/works", "/v1/works")
    call("holder", "GET", "/v1/works/{work_id}", "/v1/works/schema-work")
    more = encode(scene(7002, (256, 192)))
    call(
        "holder",
        "POST",
        "/v1/works/{work_id}/references",
        "/v1/works/schema-work/references",
        files=files(more),
    )
    call(
        "holder",
        "PUT",
        "/v1/works/{work_id}/licensees",
        "/v1/works/schema-work/licensees",
        json={"licensees": ["othergen"]},
    )

    checked = call(
        "platform",
        "POST",
        "/v1/check",
        "/v1/check",
        data={"prompt": "a hero", "user_ref": "u1"},
        files=files(
            encode(original, "JPEG", quality=85), encode(scene(7003, (256, 192))), b"broken"
        ),
    )
    blocked, allowed, broken = checked["results"]
    assert (blocked["decision"], allowed["decision"]) == ("block", "allow")
    assert broken["error"]["code"]
    check_id = blocked["check_id"]
    call("platform", "GET", "/v1/checks", "/v1/checks")
    call("platform", "GET", "/v1/checks/{check_id}", f"/v1/checks/{check_id}")
    call("platform", "GET", "/v1/checks/{check_id}/evidence", f"/v1/checks/{check_id}/evidence")
    call(
        "platform",
        "GET",
        "/v1/checks/{check_id}/evidence.png",
        f"/v1/checks/{check_id}/evidence.png",
    )
    call("holder", "GET", "/v1/checks", "/v1/checks")

    notice = call(
        "holder",
        "POST",
        "/v1/notices",
        "/v1/notices",
        data={"work_id": "schema-notice", "description": "a copy"},
        files=files(encode(scene(7004, (256, 192)))),
    )
    notice_id = notice["notice_id"]
    running.settled(notice, "holder")  # a notice is rejected once its job has run
    call("holder", "GET", "/v1/notices", "/v1/notices")
    call("holder", "GET", "/v1/notices/{notice_id}", f"/v1/notices/{notice_id}")
    job_id = notice["job"]["job_id"]
    call("holder", "GET", "/v1/jobs/{job_id}", f"/v1/jobs/{job_id}")
    call(
        "operator",
        "POST",
        "/v1/notices/{notice_id}/reject",
        f"/v1/notices/{notice_id}/reject",
        json={"reason": "not a work of the holder"},
    )
    # With the work's block band at 1.0, altered copies wait for review.
    call(
        "operator",
        "PUT",
        "/v1/works/{work_id}/thresholds",
        "/v1/works/schema-work/thresholds",
        json={"review": 0.05, "block": 1.0},
    )
    width, height = original.size
    altered = [original.crop((width // 4, height // 4, 3 * width // 4, 3 * height // 4)), original]
    reviewed = call(
        "platform",
        "POST",
        "/v1/check",
        "/v1/check",
        files=files(*(encode(a, "JPEG", quality=70) for a in altered)),
    )
    pending = [r["check_id"] for r in reviewed["results"]]
    assert [r["decision"] for r in reviewed["results"]] == ["review", "review"]
    call("operator", "GET", "/v1/review", "/v1/review")
    call(
        "operator",
        "POST",
        "/v1/review/{check_id}/confirm",
        f"/v1/review/{pending[0]}/confirm",
        json={"note": "a crop of the work"},
    )
    call(
        "operator",
        "POST",
        "/v1/review/{check_id}/reject",
        f"/v1/review/{pending[1]}/reject",
        json={"note": "false positive"},
    )
    call("operator", "GET", "/v1/review", "/v1/review", params={"status": "rejected"})
    call("platform", "GET", "/v1/checks", "/v1/checks", params={"decision": "review"})
    call(
        "operator",
        "DELETE",
        "/v1/works/{work_id}/thresholds",
        "/v1/works/schema-work/thresholds",
    )

    call("admin", "GET", "/v1/audit", "/v1/audit", params={"limit": 5})
    call("admin", "GET", "/v1/audit/verify", "/v1/audit/verify")
    call("admin", "GET", "/v1/policy", "/v1/policy")
    key = call(
        "admin", "POST", "/v1/keys", "/v1/keys", json={"role": "platform", "owner": "newgen"}
    )
    call("admin", "GET", "/v1/keys", "/v1/keys")
    named = call(
        "holder",
        "PUT",
        "/v1/owners/{owner}",
        "/v1/owners/tsuburaya",
        json={"display_name": "圆谷"},
    )
    assert named == {"owner": "tsuburaya", "display_name": "圆谷"}
    call("operator", "GET", "/v1/owners/{owner}", "/v1/owners/tsuburaya")
    call("admin", "DELETE", "/v1/keys/{key_id}", f"/v1/keys/{key['key_id']}")

    image = {"image": ("out.png", encode(scene(7005, (128, 96))), "image/png")}
    labelled = client.post(
        "/v1/label",
        headers=h("platform"),
        data={"provider": "genco", "content_id": "c-1"},
        files=image,
    )
    assert labelled.status_code == 200, labelled.text
    validate("/v1/label", "POST", labelled)
    call(
        "platform",
        "POST",
        "/v1/label/verify",
        "/v1/label/verify",
        files={"image": ("out.png", labelled.content, labelled.headers["content-type"])},
    )
    for template in ("/healthz", "/readyz"):
        call("platform", "GET", template, template)

    call(
        "holder",
        "DELETE",
        "/v1/works/{work_id}/references/{reference_id}",
        f"/v1/works/schema-work/references/{reference}",
    )
    # References held for an operator: stored through the catalog as a registration holds
    # one (which needs a picture of the background bank in use).
    catalog = running.app.state.runtime.desk.screener.catalog
    held_ids = []
    for seed in (7006, 7007):
        data = encode(scene(seed, (256, 192)))
        _, _, ids = catalog.register(
            "schema-work",
            title="Schema",
            owner="",
            aliases=(),
            references=(),
            must_exist=True,
            held=[
                NewHeld(hashlib.sha256(data).hexdigest(), f"{seed}.png", "PNG", 256, 192, data, ())
            ],
        )
        held_ids += ids
    call("holder", "GET", "/v1/references/held", "/v1/references/held")
    call(
        "holder",
        "GET",
        "/v1/works/{work_id}/held/{held_id}/image",
        f"/v1/works/schema-work/held/{held_ids[0]}/image",
    )
    call(
        "operator",
        "POST",
        "/v1/works/{work_id}/held/{held_id}/approve",
        f"/v1/works/schema-work/held/{held_ids[0]}/approve",
        json={"note": "its own photograph"},
    )
    call(
        "operator",
        "POST",
        "/v1/works/{work_id}/held/{held_id}/reject",
        f"/v1/works/schema-work/held/{held_ids[1]}/reject",
    )
    call("holder", "DELETE", "/v1/works/{work_id}", "/v1/works/schema-work")

    # Every operation the schema lists was answered with a success here (but /metrics, whose
    # body is Prometheus text, and /v1/label, validated above).
    listed = {
        (method.upper(), path)
        for path, methods in schema.raw_schema["paths"].items()
        for method in methods
    }
    # Appeals and territories answer successfully in test_schema_duties.py.
    elsewhere = {(m, p) for m, p in listed if "appeal" in p or p.endswith("/territories")}
    untested = listed - {(m, p) for m, p, _ in seen} - {("POST", "/v1/label")} - elsewhere
    assert untested == {("GET", "/metrics")}
