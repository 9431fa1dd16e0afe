"""Appeals, territories and C2PA labels against the published OpenAPI schema: schemathesis
as each role that uses them (the admin run in test_schema.py covers every operation), and
the success responses of each new operation validated against the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PIL import ImageFilter

from screener.core.samples import scene
from tests.c2pa_certs import make_chain
from tests.service.conftest import Service, encode, files, running_service
from tests.service.test_schema import CHECKS, FUZZ, PROXY, schema, validate

pytestmark = pytest.mark.slow

NEW = (
    r"^/v1/(appeals|checks/\{check_id\}/appeal|label"
    r"|works/\{work_id\}/(territories|licensees/\{licensee\}/territories|thresholds/territories))"
)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("schema-duties")
    chain = make_chain(folder)
    with running_service(
        folder / "data", c2pa_cert=chain.cert, c2pa_key=chain.key, c2pa_trust_anchors=chain.root
    ) as service:
        PROXY.target = service.app
        try:
            yield service
        finally:
            PROXY.target = None


@schema.include(path_regex=NEW).parametrize()
@FUZZ
@pytest.mark.parametrize("who", ["platform", "holder", "operator"])
def test_new_operations_by_role(case: Any, who: str, running: Service) -> None:
    case.call_and_validate(headers=running.h(who), checks=CHECKS)


def test_new_success_responses_match_the_schema(running: Service) -> None:
    client, h = running.client, running.h

    def call(who: str, method: str, template: str, path: str, **kwargs: Any) -> Any:
        response = client.request(method, path, headers=h(who), **kwargs)
        assert response.is_success, (method, path, response.text)
        validate(template, method, response)
        return response.json() if "json" in response.headers["content-type"] else None

    original = scene(7101, (256, 192))
    assert running.register("holder", "schema-appeal", encode(original)).status_code == 201
    copy = encode(original.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=80)
    held = client.post(
        "/v1/check", headers=h("platform"), data={"territory": "CN"}, files=files(copy)
    ).json()["results"][0]
    assert held["decision"] == "block"
    filed = call(
        "platform",
        "POST",
        "/v1/checks/{check_id}/appeal",
        f"/v1/checks/{held['check_id']}/appeal",
        json={"statement": "mine", "contact_ref": "t-1"},
    )
    appeal_id = filed["appeal_id"]
    call("holder", "GET", "/v1/appeals", "/v1/appeals", params={"overdue": "false"})
    call("platform", "GET", "/v1/appeals/{appeal_id}", f"/v1/appeals/{appeal_id}")
    call(
        "holder",
        "POST",
        "/v1/appeals/{appeal_id}/response",
        f"/v1/appeals/{appeal_id}/response",
        json={"text": "ours"},
    )
    call(
        "operator",
        "POST",
        "/v1/appeals/{appeal_id}/decision",
        f"/v1/appeals/{appeal_id}/decision",
        json={"outcome": "overturned", "reason": "original"},
    )
    client.put(
        "/v1/works/schema-appeal/licensees", headers=h("holder"), json={"licensees": ["genco"]}
    )
    for who, template, path in (
        ("holder", "/v1/works/{work_id}/territories", "/v1/works/schema-appeal/territories"),
        (
            "holder",
            "/v1/works/{work_id}/licensees/{licensee}/territories",
            "/v1/works/schema-appeal/licensees/genco/territories",
        ),
        (
            "operator",
            "/v1/works/{work_id}/thresholds/territories",
            "/v1/works/schema-appeal/thresholds/territories",
        ),
    ):
        call(who, "PUT", template, path, json={"territories": ["CN"]})

    labelled = client.post(
        "/v1/label",
        headers=h("platform"),
        data={
            "provider": "genco",
            "content_id": "c-2",
            "c2pa": "true",
            "check_id": held["check_id"],
        },
        files={"image": ("out.jpg", copy, "image/jpeg")},  # the check's own bytes
    )
    assert labelled.status_code == 200, labelled.text
    validate("/v1/label", "POST", labelled)
    found = call(
        "platform",
        "POST",
        "/v1/label/verify",
        "/v1/label/verify",
        files={"image": ("out.jpg", labelled.content, "image/jpeg")},
    )
    assert found["c2pa"]["validation_state"] == "Trusted"
