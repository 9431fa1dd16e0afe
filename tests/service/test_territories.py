"""Protection per territory through the API, on SQLite and a real PostgreSQL: a work
protected only in CN, a licence that holds in one territory, thresholds limited to one,
the platform's default territory, and who may set them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFilter

from screener.core.samples import scene
from tests.service.conftest import Service, encode, running_service

pytestmark = pytest.mark.slow


def copy_of(image: Image.Image) -> bytes:
    return encode(image.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=80)


def one(service: Service, who: str, data: bytes, **form: Any) -> dict[str, Any]:
    response = service.check(who, data, **form)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["results"][0]
    return result


def put(service: Service, who: str, path: str, territories: list[str]) -> Any:
    return service.client.put(path, headers=service.h(who), json={"territories": territories})


def test_a_work_protected_only_in_cn_holds_only_there(service: Service) -> None:
    original = scene(2601)
    assert service.register("holder", "cn-only", encode(original)).status_code == 201
    limited = put(service, "holder", "/v1/works/cn-only/territories", ["cn"])
    assert limited.status_code == 200, limited.text
    assert limited.json()["territories"] == ["CN"]

    in_cn = one(service, "platform", copy_of(original), territory="CN")
    assert in_cn["decision"] == "block"
    assert in_cn["verdict"]["territory"] == "CN"
    assert in_cn["verdict"]["matches"][0]["work_id"] == "cn-only"

    in_us = one(service, "platform", copy_of(original), territory="US")
    assert in_us["decision"] == "allow" and in_us["risk_prompt"] is None
    assert in_us["verdict"]["matches"] == []
    reported = in_us["verdict"]["outside_territory"]
    assert [m["work_id"] for m in reported] == ["cn-only"]
    assert reported[0]["outside_territory"] is True and reported[0]["decision"] == "block"
    pack = service.client.get(
        f"/v1/checks/{in_us['check_id']}/evidence", headers=service.h("platform")
    ).json()
    assert pack["territory"] == "US"
    assert [m["work_id"] for m in pack["outside_territory"]] == ["cn-only"]

    # No territory named: released everywhere, so protected.
    assert one(service, "platform", copy_of(original))["decision"] == "block"
    bad = service.check("platform", copy_of(original), territory="ZZ")
    assert bad.status_code == 422 and "ISO 3166-1" in bad.json()["error"]["message"]


def test_a_licensee_in_one_territory_is_exempt_only_there(service: Service) -> None:
    original = scene(2602)
    assert service.register("holder", "licensed-cn", encode(original)).status_code == 201
    service.client.put(
        "/v1/works/licensed-cn/licensees",
        headers=service.h("holder"),
        json={"licensees": ["genco"]},
    )
    granted = put(service, "holder", "/v1/works/licensed-cn/licensees/genco/territories", ["CN"])
    assert granted.status_code == 200, granted.text
    assert granted.json()["licensee_territories"] == {"genco": ["CN"]}

    in_cn = one(service, "platform", copy_of(original), territory="CN")
    assert in_cn["decision"] == "allow"
    assert [m["work_id"] for m in in_cn["verdict"]["licensed"]] == ["licensed-cn"]
    in_us = one(service, "platform", copy_of(original), territory="US")
    assert in_us["decision"] == "block" and in_us["verdict"]["licensed"] == []
    unknown = one(service, "platform", copy_of(original))
    assert unknown["decision"] == "block"
    assert one(service, "platform2", copy_of(original), territory="CN")["decision"] == "block"


def test_a_works_own_thresholds_apply_in_their_territories(service: Service) -> None:
    original = scene(2603)
    assert service.register("holder", "lenient-jp", encode(original)).status_code == 201
    service.client.put(
        "/v1/works/lenient-jp/thresholds",
        headers=service.h("operator"),
        json={"review": 0.05, "block": 1.0},
    )
    assert (
        put(service, "holder", "/v1/works/lenient-jp/thresholds/territories", ["JP"]).status_code
        == 403
    )
    limited = put(service, "operator", "/v1/works/lenient-jp/thresholds/territories", ["JP"])
    assert limited.status_code == 200 and limited.json()["threshold_territories"] == ["JP"]
    assert one(service, "platform", copy_of(original), territory="JP")["decision"] == "review"
    assert one(service, "platform", copy_of(original), territory="FR")["decision"] == "block"


def test_who_may_set_territories(service: Service) -> None:
    assert service.register("holder", "placed", encode(scene(2604))).status_code == 201
    assert put(service, "platform", "/v1/works/placed/territories", ["CN"]).status_code == 403
    assert put(service, "holder2", "/v1/works/placed/territories", ["CN"]).status_code == 404
    assert put(service, "holder", "/v1/works/placed/territories", ["XX"]).status_code == 422
    assert put(service, "holder", "/v1/works/nowhere/territories", ["CN"]).status_code == 404
    unlisted = put(service, "holder", "/v1/works/placed/licensees/genco/territories", ["CN"])
    assert unlisted.status_code == 404
    done = put(service, "operator", "/v1/works/placed/territories", ["US", "CN"])
    assert done.json()["territories"] == ["CN", "US"]
    assert put(service, "holder", "/v1/works/placed/territories", []).json()["territories"] == []
    records = service.client.get("/v1/audit?limit=1000", headers=service.h("operator")).json()
    assert [
        r["payload"]["territories"]
        for r in records
        if r["action"] == "work.territories" and r["subject"] == "placed"
    ] == [["CN", "US"], []]


def test_a_platforms_default_territory_applies(tmp_path: Path) -> None:
    with running_service(tmp_path, platform_territories={"genco": "US"}) as service:
        original = scene(2605)
        assert service.register("holder", "cn-work", encode(original)).status_code == 201
        put(service, "holder", "/v1/works/cn-work/territories", ["CN"])
        default = one(service, "platform", copy_of(original))
        assert default["decision"] == "allow" and default["verdict"]["territory"] == "US"
        named = one(service, "platform", copy_of(original), territory="CN")
        assert named["decision"] == "block"
        other = one(service, "platform2", copy_of(original))
        assert other["decision"] == "block" and other["verdict"]["territory"] is None


def test_the_territory_a_check_applied_is_in_its_audit_record(service: Service) -> None:
    """The territory decides whether a match holds the output, so the hash chain keeps it
    with the decision (a verdict row edited afterwards cannot move it unseen)."""
    original = scene(2605)
    assert service.register("holder", "cn-audited", encode(original)).status_code == 201
    assert put(service, "holder", "/v1/works/cn-audited/territories", ["CN"]).status_code == 200
    released = one(service, "platform", copy_of(original), territory="US")
    held = one(service, "platform", copy_of(original))
    assert released["decision"] == "allow" and held["decision"] == "block"
    records = service.client.get("/v1/audit?limit=1000", headers=service.h("operator")).json()
    payloads = {r["subject"]: r["payload"] for r in records if r["action"] == "check"}
    assert payloads[released["check_id"]]["territory"] == "US"
    assert payloads[held["check_id"]]["territory"] is None
