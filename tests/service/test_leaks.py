"""What each route tells a caller who may use it, beyond who is refused: evidence pictures
and packs show only what the caller may see, and no answer tells a caller whether another
owner's work or another platform's check exists (on SQLite and on a real PostgreSQL)."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from PIL import Image

from screener.core.samples import scene
from tests.console.test_pages import sign_in
from tests.service.conftest import Service, encode, files
from tests.service.test_api import copy_of, only

pytestmark = pytest.mark.slow

MINE = scene(1701, (320, 240))  # holder's work "leak-mine", also holder2's "leak-theirs"
NEVER = scene(1702, (320, 240))  # holder2's "leak-never": registered, never matched
SECRETS = ("secret-user-17", "a secret prompt", "genco", "leak-theirs", "gorgon-studio")


def error_of(response: httpx.Response, status: int, *ids: str) -> dict[str, Any]:
    """The error body with the ids it names replaced, to compare answers about two ids."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    for name in ids:
        error["message"] = error["message"].replace(name, "ID")
    return error


@pytest.fixture(scope="module")
def flagged(service: Service) -> dict[str, Any]:
    """One blocked check matching works of two owners (the same image registered twice),
    made by "genco" with a user reference and a prompt."""
    assert service.register("holder", "leak-mine", encode(MINE)).status_code == 201
    assert service.register("holder2", "leak-theirs", encode(MINE)).status_code == 201
    assert service.register("holder2", "leak-never", encode(NEVER)).status_code == 201
    result = only(
        service.check(
            "platform", copy_of(MINE), user_ref="secret-user-17", prompt="a secret prompt"
        )
    )
    assert result["decision"] == "block", result["fused_score"]
    matched = {m["work_id"] for m in result["verdict"]["matches"]}
    assert matched == {"leak-mine", "leak-theirs"}, matched
    return result


def test_evidence_picture_draws_only_the_checks_matched_works(
    service: Service, flagged: dict[str, Any]
) -> None:
    url = f"/v1/checks/{flagged['check_id']}/evidence.png"
    for work in ("leak-mine", "leak-theirs", None):
        picture = service.client.get(
            url, params={"work_id": work} if work else {}, headers=service.h("platform")
        )
        assert picture.status_code == 200, picture.text
        assert Image.open(io.BytesIO(picture.content)).format == "PNG"
    # A work that exists but never matched is answered exactly as one that does not exist.
    never = service.client.get(url, params={"work_id": "leak-never"}, headers=service.h("platform"))
    made_up = service.client.get(
        url, params={"work_id": "leak-nope!"}, headers=service.h("platform")
    )
    assert error_of(never, 404, "leak-never") == error_of(made_up, 404, "leak-nope!")
    assert never.headers["content-type"] == made_up.headers["content-type"]
    assert len(never.content) == len(made_up.content)  # ids of one length


def test_evidence_pack_is_cut_for_a_rights_holder_by_the_rule_of_the_check_record(
    service: Service, flagged: dict[str, Any]
) -> None:
    check_id = flagged["check_id"]
    get = service.client.get
    pack = get(f"/v1/checks/{check_id}/evidence", headers=service.h("holder"))
    record = get(f"/v1/checks/{check_id}", headers=service.h("holder"))
    listed = get("/v1/checks", headers=service.h("holder"))
    signed_in = sign_in(service, "holder")
    console = signed_in.get(f"/console/checks/{check_id}/evidence.json")
    page = signed_in.get(f"/console/checks/{check_id}")
    for answer in (pack, record, listed, console, page):
        assert answer.status_code == 200, answer.text
        for secret in SECRETS:
            assert secret not in answer.text, (answer.request.url, secret)

    # What the rights holder does see: its own work's match and the evidence for it.
    seen = pack.json()
    assert [m["work_id"] for m in seen["matches"]] == ["leak-mine"]
    assert seen["matches"][0]["signals"] and seen["input"]["sha256"]
    assert seen["decision"] == "block" and seen["thresholds"]
    payload = seen["chain"]["payload"]
    assert payload["platform"] is None and payload["user_ref"] is None
    assert payload["matched_works"] == ["leak-mine"]
    assert payload["input_sha256"] == seen["input"]["sha256"]
    assert {"chain.payload.platform", "chain.payload.user_ref"} <= set(seen["redacted"])
    assert json.loads(console.text)["matches"] == seen["matches"]
    assert [m["work_id"] for m in record.json()["verdict"]["matches"]] == ["leak-mine"]

    # The platform that made the check and operators see it whole, as hashed in the chain.
    for who in ("platform", "operator"):
        whole = get(f"/v1/checks/{check_id}/evidence", headers=service.h(who)).json()
        assert whole["redacted"] == []
        assert whole["chain"]["payload"]["platform"] == "genco"
        assert whole["chain"]["payload"]["user_ref"] == "secret-user-17"
        assert sorted(whole["chain"]["payload"]["matched_works"]) == ["leak-mine", "leak-theirs"]
        assert {m["work_id"] for m in whole["matches"]} == {"leak-mine", "leak-theirs"}
    audit = get(
        "/v1/audit",
        params={"after": whole["chain"]["seq"] - 1, "limit": 1},
        headers=service.h("operator"),
    ).json()
    assert audit[0]["payload"] == whole["chain"]["payload"]
    assert get("/v1/audit/verify", headers=service.h("operator")).json()["ok"] is True


def test_a_taken_work_id_gets_one_answer_whoever_holds_it(
    service: Service, flagged: dict[str, Any]
) -> None:
    image = encode(scene(1703, (320, 240)))
    others = service.register("holder2", "leak-mine", image)
    own = service.register("holder", "leak-mine", image)
    assert error_of(others, 409) == error_of(own, 409)
    assert "holder" not in others.text and "tsuburaya" not in others.text

    # A notice names another owner's work as it names one never registered...
    def notice(work_id: str, *images: bytes) -> httpx.Response:
        response: httpx.Response = service.client.post(
            "/v1/notices",
            headers=service.h("holder2"),
            data={"work_id": work_id, "description": "copies"},
            files=files(*images) if images else None,
        )
        return response

    assert error_of(notice("leak-mine"), 422, "leak-mine") == error_of(
        notice("leak-never-registered"), 422, "leak-never-registered"
    )
    # ...and with images it fails as a create would.
    assert error_of(notice("leak-mine", image), 409) == error_of(others, 409)


def test_a_notice_tells_nothing_of_other_platforms_checks(
    service: Service, flagged: dict[str, Any]
) -> None:
    elsewhere = only(service.check("platform2", encode(scene(1704, (320, 240)))))
    assert elsewhere["decision"] == "allow"
    made_up = "chk_" + "0" * 24
    filed = service.client.post(
        "/v1/notices",
        headers=service.h("holder"),
        data={
            "work_id": "leak-mine",
            "description": "these outputs",
            "check_ids": [elsewhere["check_id"], made_up, flagged["check_id"]],
        },
    )
    assert filed.status_code == 201, filed.text
    named = service.settled(filed.json(), "holder")["measures"]["named_checks"]
    assert named == {
        elsewhere["check_id"]: "unknown",
        made_up: "unknown",
        flagged["check_id"]: "already_block",
    }


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/v1/works", {"work_id": "leak-many"}),
        ("/v1/works/leak-mine/references", {}),
        ("/v1/notices", {"work_id": "leak-many"}),
    ],
)
def test_the_role_is_checked_before_the_uploads(
    service: Service, path: str, form: dict[str, str]
) -> None:
    many = [encode(scene(1705, (32, 24)))] * 20
    response = service.client.post(
        path, headers=service.h("platform"), data=form, files=files(*many)
    )
    assert error_of(response, 403)["code"] == "forbidden"
    # Before the form is validated, too.
    incomplete = service.client.post(path, headers=service.h("platform"), data={"title": 1})
    assert error_of(incomplete, 403)["code"] == "forbidden"


def test_a_rights_holder_is_refused_a_check_before_its_form_is_validated(
    service: Service,
) -> None:
    many = [encode(scene(1705, (32, 24)))] * 20
    for body in ({"files": files(*many)}, {"data": {"prompt": "no images"}}):
        response = service.client.post("/v1/check", headers=service.h("holder"), **body)
        assert error_of(response, 403)["code"] == "forbidden"


def test_a_405_allows_every_method_of_its_path(service: Service) -> None:
    for method, path, allowed in [
        ("DELETE", "/v1/works", {"GET", "POST"}),
        ("PATCH", "/v1/works/x", {"GET", "DELETE"}),
        ("GET", "/v1/works/x/thresholds", {"PUT", "DELETE"}),
        ("PUT", "/v1/checks/x", {"GET"}),
    ]:
        response = service.client.request(method, path, headers=service.h("admin"))
        assert response.status_code == 405, (method, path)
        assert set(response.headers["allow"].split(", ")) == allowed, (path, response.headers)


def test_unparseable_bodies_are_a_documented_400(service: Service) -> None:
    schema = service.app.openapi()
    with_body = [
        (path, method)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(with_body) >= 10
    for path, method in with_body:
        documented = schema["paths"][path][method]["responses"]
        assert "400" in documented, (method, path)
    broken = service.client.post(
        "/v1/works",
        headers={**service.h("holder"), "content-type": "multipart/form-data"},
        content=b"not multipart",
    )
    assert error_of(broken, 400)["code"] == "bad_request"
