"""The API's acceptance flows, on SQLite and on a real PostgreSQL (see conftest)."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest
from PIL import Image, ImageFilter

from screener.core.samples import scene
from tests.service.conftest import Service, encode

pytestmark = pytest.mark.slow


def work_image(seed: int) -> Image.Image:
    return scene(seed)


def copy_of(image: Image.Image) -> bytes:
    """A near-copy: blurred and saved as JPEG."""
    return encode(image.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=80)


def centre_crop(image: Image.Image, quality: int = 85) -> bytes:
    """Half of each side, from the middle: a partial copy."""
    w, h = image.size
    return encode(image.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)), "JPEG", quality=quality)


def only(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 1
    result: dict[str, Any] = results[0]
    return result


def test_copy_is_blocked_with_evidence_and_unrelated_is_allowed(service: Service) -> None:
    original = work_image(1)
    made = service.register(
        "holder", "ultraman", encode(original), title="Ultraman", aliases=["奥特曼"]
    )
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == "tsuburaya"
    assert made.json()["references_added"]

    blocked = only(service.check("platform", copy_of(original), prompt="a giant hero"))
    assert blocked["decision"] == "block"
    top = blocked["verdict"]["matches"][0]
    assert top["work_id"] == "ultraman"
    assert top["title"] == "Ultraman"
    assert top["signals"]["sscd_cosine"] > 0.5
    assert "Ultraman" in blocked["risk_prompt"]["en"]
    assert "Ultraman" in blocked["risk_prompt"]["zh"]
    for name in ("policy_version", "index_version", "models", "thresholds"):
        assert blocked["verdict"][name]

    evidence = service.client.get(
        f"/v1/checks/{blocked['check_id']}/evidence", headers=service.h("platform")
    )
    assert evidence.status_code == 200, evidence.text
    pack = evidence.json()
    assert pack["matches"][0]["work_id"] == "ultraman"
    assert pack["input"]["sha256"] == blocked["verdict"]["input"]["sha256"]
    assert pack["chain"]["seq"] == blocked["audit_seq"]
    assert pack["chain"]["payload"]["decision"] == "block"
    assert pack["chain"]["head_seq"] >= pack["chain"]["seq"]
    assert pack["versions"]["policy"] and pack["timestamps"]["checked_at"]

    allowed = only(service.check("platform", encode(work_image(2), "JPEG")))
    assert allowed["decision"] == "allow"
    assert allowed["risk_prompt"] is None
    assert allowed["verdict"]["matches"] == []


def test_one_request_checks_several_images_and_reports_a_bad_one_in_place(
    service: Service,
) -> None:
    original = work_image(11)
    assert service.register("holder", "several", encode(original)).status_code == 201
    response = service.check(
        "platform",
        copy_of(original),
        ("notes.txt", b"not an image at all", "text/plain"),
        encode(work_image(12)),
    )
    assert response.status_code == 200, response.text
    first, bad, third = response.json()["results"]
    assert first["decision"] == "block"
    assert bad["error"]["code"] == "unsupported_format"
    assert bad["check_id"] is None
    assert third["decision"] == "allow"


def test_licensee_matches_are_reported_not_blocked(service: Service) -> None:
    original = work_image(21)
    assert service.register("holder", "licensed-work", encode(original)).status_code == 201
    granted = service.client.put(
        "/v1/works/licensed-work/licensees",
        headers=service.h("holder"),
        json={"licensees": ["genco"]},
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["licensees"] == ["genco"]

    licensee = only(service.check("platform", copy_of(original)))
    assert licensee["decision"] == "allow"
    assert licensee["risk_prompt"] is None
    assert [m["work_id"] for m in licensee["verdict"]["licensed"]] == ["licensed-work"]
    assert licensee["verdict"]["licensed"][0]["licensed"] is True

    other = only(service.check("platform2", copy_of(original)))
    assert other["decision"] == "block"
    assert other["verdict"]["matches"][0]["work_id"] == "licensed-work"


def test_notice_rescreens_earlier_allowed_outputs(service: Service) -> None:
    unregistered = work_image(31)
    released = only(service.check("platform", copy_of(unregistered), user_ref="user-7"))
    assert released["decision"] == "allow"
    untouched = only(service.check("platform", encode(work_image(32))))
    assert untouched["decision"] == "allow"

    filed = service.client.post(
        "/v1/notices",
        headers=service.h("holder"),
        data={
            "work_id": "medusa",
            "title": "Medusa",
            "description": "outputs copy our character",
            "check_ids": [released["check_id"], "chk_000000000000000000000000"],
        },
        files=[("images", ("medusa.png", encode(unregistered), "image/png"))],
    )
    assert filed.status_code == 201, filed.text
    notice = service.settled(filed.json(), "holder")
    assert notice["job"]["state"] == "done"
    assert notice["status"] == "measures_taken"
    assert [h["status"] for h in notice["history"]] == ["received", "measures_taken"]
    measures = notice["measures"]
    assert released["check_id"] in measures["affected_check_ids"]
    assert untouched["check_id"] not in measures["affected_check_ids"]
    assert measures["named_checks"] == {
        released["check_id"]: "matches_now",
        "chk_000000000000000000000000": "unknown",
    }
    assert measures["references_added"]

    # The platform finds its affected output; the work now blocks new copies.
    mine = service.client.get("/v1/checks?rescreened=true", headers=service.h("platform"))
    assert released["check_id"] in [c["check_id"] for c in mine.json()["items"]]
    record = service.client.get(f"/v1/checks/{released['check_id']}", headers=service.h("platform"))
    assert record.json()["rescreen"]["work_id"] == "medusa"
    assert only(service.check("platform", copy_of(unregistered)))["decision"] == "block"

    # Another rights holder cannot see it; the filer and operators can.
    url = f"/v1/notices/{notice['notice_id']}"
    assert service.client.get(url, headers=service.h("holder2")).status_code == 404
    assert service.client.get(url, headers=service.h("platform")).status_code == 404
    assert service.client.get(url, headers=service.h("holder")).status_code == 200

    # An operator rejects it: the references it added go again.
    rejected = service.client.post(
        f"{url}/reject", headers=service.h("operator"), json={"reason": "licensed use"}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reason"] == "licensed use"
    work = service.client.get("/v1/works/medusa", headers=service.h("holder")).json()
    assert work["reference_count"] == 0
    assert only(service.check("platform", copy_of(unregistered)))["decision"] == "allow"
    again = service.client.post(
        f"{url}/reject", headers=service.h("operator"), json={"reason": "twice"}
    )
    assert again.status_code == 409


def test_notice_for_an_unknown_work_needs_images(service: Service) -> None:
    response = service.client.post(
        "/v1/notices", headers=service.h("holder"), data={"work_id": "nothing-here"}
    )
    assert response.status_code == 422
    assert "reference images" in response.json()["error"]["message"]


def test_review_confirm_makes_the_next_similar_output_match(service: Service) -> None:
    original = work_image(41)
    assert service.register("holder", "reviewed", encode(original)).status_code == 201
    # Held for review by a never-block override (fused scores stop below 1.0).
    bands = service.client.put(
        "/v1/works/reviewed/thresholds",
        headers=service.h("operator"),
        json={"review": 0.5, "block": 1.0},
    )
    assert bands.status_code == 200, bands.text
    assert bands.json()["thresholds"] == {"review": 0.5, "block": 1.0}

    held = only(service.check("platform", centre_crop(original)))
    assert held["decision"] == "review", held["fused_score"]
    assert "reviewed" in held["risk_prompt"]["en"]
    queue = service.client.get("/v1/review", headers=service.h("operator")).json()
    assert held["check_id"] in [c["check_id"] for c in queue["items"]]
    assert service.client.get("/v1/review", headers=service.h("platform")).status_code == 403

    confirmed = service.client.post(
        f"/v1/review/{held['check_id']}/confirm",
        headers=service.h("operator"),
        json={"note": "a crop of the work"},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["review_status"] == "confirmed"
    assert confirmed.json()["review"]["work_id"] == "reviewed"
    again = service.client.post(
        f"/v1/review/{held['check_id']}/confirm", headers=service.h("operator"), json={}
    )
    assert again.status_code == 409
    # The confirmed output became a reference of the work.
    work = service.client.get("/v1/works/reviewed", headers=service.h("holder")).json()
    assert work["reference_count"] == 2, work

    service.client.put(
        "/v1/works/reviewed/thresholds",
        headers=service.h("operator"),
        json={"review": 0.5, "block": 0.99},
    )
    later = only(service.check("platform", centre_crop(original, quality=70)))
    assert later["decision"] == "block"
    assert later["verdict"]["matches"][0]["work_id"] == "reviewed"
    assert later["fused_score"] >= held["fused_score"]


def test_review_reject_records_a_false_positive(service: Service) -> None:
    original = work_image(51)
    assert service.register("holder", "rejected-review", encode(original)).status_code == 201
    service.client.put(
        "/v1/works/rejected-review/thresholds",
        headers=service.h("operator"),
        json={"review": 0.5, "block": 1.0},
    )
    held = only(service.check("platform", centre_crop(original)))
    assert held["decision"] == "review"
    rejected = service.client.post(
        f"/v1/review/{held['check_id']}/reject",
        headers=service.h("operator"),
        json={"note": "different character"},
    )
    assert rejected.status_code == 200, rejected.text
    false_positives = service.client.get(
        "/v1/review?status=rejected", headers=service.h("operator")
    ).json()["items"]
    found = [c for c in false_positives if c["check_id"] == held["check_id"]]
    assert found and found[0]["verdict"]["matches"][0]["signals"]


def test_audit_chain_records_every_duty_and_verifies(service: Service) -> None:
    records = service.client.get("/v1/audit?limit=1000", headers=service.h("operator")).json()
    actions = {r["action"] for r in records}
    assert {"key.create", "work.create", "check"} <= actions
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs)
    for before, after in itertools.pairwise(records):
        assert after["prev_hash"] == before["hash"]
    verified = service.client.get("/v1/audit/verify", headers=service.h("operator")).json()
    assert verified["ok"] is True
    assert verified["head_seq"] == seqs[-1]


def test_keys_are_managed_by_admins_only(service: Service) -> None:
    made = service.client.post(
        "/v1/keys",
        headers=service.h("admin"),
        json={"role": "platform", "owner": "newgen", "description": "new platform"},
    )
    assert made.status_code == 201, made.text
    secret = made.json()["key"]
    key_id = made.json()["key_id"]
    headers = {"X-API-Key": secret}
    assert service.client.get("/v1/checks", headers=headers).status_code == 200
    listed = service.client.get("/v1/keys", headers=service.h("admin")).json()
    assert all(k["key"] is None for k in listed)  # never shown again
    assert key_id in [k["key_id"] for k in listed]
    for who in ("operator", "platform", "holder"):
        assert service.client.get("/v1/keys", headers=service.h(who)).status_code == 403
    revoked = service.client.delete(f"/v1/keys/{key_id}", headers=service.h("admin"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert service.client.get("/v1/checks", headers=headers).status_code == 401


def test_labels_round_trip(service: Service) -> None:
    labelled = service.client.post(
        "/v1/label",
        headers=service.h("platform"),
        data={"provider": "genco", "content_id": "out-1", "visible": "true"},
        files={"image": ("o.png", encode(work_image(61)), "image/png")},
    )
    assert labelled.status_code == 200, labelled.text
    assert labelled.headers["content-type"] == "image/png"
    read = service.client.post(
        "/v1/label/verify",
        headers=service.h("platform"),
        files={"image": ("o.png", labelled.content, "image/png")},
    ).json()
    assert read["labelled"] is True
    assert read["label"]["provider"] == "genco"
    assert read["label"]["content_id"] == "out-1"
    records = service.client.get("/v1/audit?limit=1000", headers=service.h("operator")).json()
    applied = [r for r in records if r["action"] == "label.apply"]
    assert len(applied) == 1
    assert applied[0]["subject"] == hashlib.sha256(labelled.content).hexdigest()
    assert (
        applied[0]["payload"]["input_sha256"] == hashlib.sha256(encode(work_image(61))).hexdigest()
    )
    assert (applied[0]["payload"]["visible"], applied[0]["payload"]["c2pa"]) == (True, False)
    plain = service.client.post(
        "/v1/label/verify",
        headers=service.h("platform"),
        files={"image": ("o.png", encode(work_image(61)), "image/png")},
    ).json()
    assert (plain["labelled"], plain["label"], plain["c2pa"]["present"]) == (False, None, False)


def test_health_readiness_metrics_and_docs(service: Service) -> None:
    assert service.client.get("/healthz").json()["status"] == "ok"
    ready = service.client.get("/readyz")
    assert ready.status_code == 200 and "sscd" in ready.json()["detail"]["signals"]
    metrics = service.client.get("/metrics").text
    for name in (
        "screener_http_requests_total",
        "screener_http_request_seconds_bucket",
        "screener_verdicts_total",
        "screener_index_vectors",
        "screener_model_seconds_bucket",
    ):
        assert name in metrics
    assert service.client.get("/openapi.json").json()["paths"]["/v1/check"]
    assert service.client.get("/docs").status_code == 200
    response = service.client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert response.headers["X-Request-ID"] == "trace-123"


@pytest.mark.parametrize("field", ["visible", "c2pa"])
@pytest.mark.parametrize("word", ["0", "1", "yes", "on", "True"])
def test_a_boolean_form_field_takes_only_the_words_of_its_schema(
    service: Service, field: str, word: str
) -> None:
    """The schema says boolean, which a multipart form writes `true` or `false`; other
    spellings are refused, not read as pydantic's lax parsing would (schemathesis: ST201)."""
    sent = service.client.post(
        "/v1/label",
        headers=service.h("platform"),
        data={"provider": "genco", "content_id": "out-1", field: word},
        files={"image": ("o.png", encode(work_image(62)), "image/png")},
    )
    assert sent.status_code == 422, sent.text
    assert "true or false" in sent.text
    plain = service.client.post(
        "/v1/label",
        headers=service.h("platform"),
        data={"provider": "genco", "content_id": "out-1", "visible": "false", "c2pa": "false"},
        files={"image": ("o.png", encode(work_image(62)), "image/png")},
    )
    assert plain.status_code == 200, plain.text
