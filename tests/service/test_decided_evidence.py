"""Evidence as it was decided on, and what follows a decision: the picture of a confirmed
check does not change, transparency shows as transparency, rights holders see their own
match, notices find outputs by their image and show rights holders no platform, owners
have display names, references say where they came from, platforms see what to take down.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from screener.core.samples import drawing, scene
from screener.matching.explain import CHECKER
from tests.service.conftest import Service, encode
from tests.service.test_api import centre_crop, copy_of, only


def picture(service: Service, who: str, check_id: str, **params: str) -> bytes:
    response = service.client.get(
        f"/v1/checks/{check_id}/evidence.png", params=params, headers=service.h(who)
    )
    assert response.status_code == 200, response.text
    data: bytes = response.content
    return data


def test_confirmed_checks_evidence_picture_is_byte_identical_after_the_confirmation(
    service: Service,
) -> None:
    original = scene(2401)
    assert service.register("holder", "fixed-1", encode(original)).status_code == 201
    bands = service.client.put(
        "/v1/works/fixed-1/thresholds",
        headers=service.h("operator"),
        json={"review": 0.5, "block": 1.0},  # never block: the crop is reviewed
    )
    assert bands.status_code == 200, bands.text
    held = only(service.check("platform", centre_crop(original)))
    assert held["decision"] == "review", held["fused_score"]
    before = {who: picture(service, who, held["check_id"]) for who in ("platform", "operator")}
    assert before["platform"] == before["operator"]

    confirmed = service.client.post(
        f"/v1/review/{held['check_id']}/confirm", headers=service.h("operator"), json={}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["action"] == "do_not_publish"
    # The output is now one of the work's references, and a check of it now matches it
    # exactly; the confirmed check's picture is still the one decided on.
    again = only(service.check("platform", centre_crop(original)))
    assert again["verdict"]["matches"][0]["signals"]["pdq_hamming"] == 0
    for who in ("platform", "operator", "holder"):
        assert picture(service, who, held["check_id"]) == before["platform"], who
    assert picture(service, "platform", again["check_id"]) != before["platform"]

    work = service.client.get("/v1/works/fixed-1", headers=service.h("holder")).json()
    origins = {r["id"]: r["origin"] for r in work["references"]}
    added = confirmed.json()["review"]["references_added"]
    assert [origins[i] for i in added] == [{"kind": "review", "source": held["check_id"]}]
    assert sorted(o["kind"] for o in origins.values()) == ["review", "uploaded"]


def test_transparent_reference_is_drawn_on_a_checkerboard(service: Service) -> None:
    cutout = drawing(2402, transparent=True)
    buffer = io.BytesIO()
    cutout.save(buffer, "PNG")
    assert service.register("holder", "cutout-1", buffer.getvalue()).status_code == 201
    flat = Image.new("RGB", cutout.size, (255, 255, 255))
    flat.paste(cutout, mask=cutout.getchannel("A"))
    blocked = only(service.check("platform", encode(flat, "JPEG", quality=90)))
    assert blocked["decision"] != "allow", blocked["fused_score"]
    drawn = Image.open(io.BytesIO(picture(service, "platform", blocked["check_id"])))
    pixels = np.asarray(drawn.convert("RGB"))
    reference_half = pixels[:, pixels.shape[1] // 2 :]
    dark_cells = np.all(reference_half == CHECKER[1], axis=-1).sum()
    black = np.all(reference_half == (0, 0, 0), axis=-1).sum()
    assert dark_cells > 2000, dark_cells  # the transparent background, on the board
    assert black < dark_cells // 10, (black, dark_cells)


def test_rights_holder_sees_its_own_match_only(service: Service) -> None:
    mine = scene(2403, (320, 240))
    assert service.register("holder", "own-1", encode(mine)).status_code == 201
    assert service.register("holder2", "own-2", encode(mine)).status_code == 201
    blocked = only(service.check("platform", copy_of(mine)))
    assert {m["work_id"] for m in blocked["verdict"]["matches"]} == {"own-1", "own-2"}
    check_id = blocked["check_id"]
    assert picture(service, "holder", check_id) == picture(
        service, "platform", check_id, work_id="own-1"
    )
    assert picture(service, "holder2", check_id) == picture(
        service, "platform", check_id, work_id="own-2"
    )
    other = service.client.get(
        f"/v1/checks/{check_id}/evidence.png",
        params={"work_id": "own-2"},
        headers=service.h("holder"),
    )
    made_up = service.client.get(
        f"/v1/checks/{check_id}/evidence.png",
        params={"work_id": "own-9"},
        headers=service.h("holder"),
    )
    assert other.status_code == made_up.status_code == 404
    assert other.json()["error"]["message"].replace("own-2", "X") == made_up.json()["error"][
        "message"
    ].replace("own-9", "X")


def test_a_notice_finds_released_outputs_by_image_and_shows_the_holder_no_platform(
    service: Service,
) -> None:
    work = scene(2404, (400, 300))
    released = only(
        service.check("platform", encode(work, "JPEG", quality=92), prompt="a secret prompt")
    )
    assert released["decision"] == "allow" and released["action"] == "publish"
    filed = service.client.post(
        "/v1/notices",
        headers=service.h("holder"),
        data={"work_id": "noticed-1", "title": "被通知的作品"},
        files=[
            ("images", ("work.png", encode(work), "image/png")),
            ("outputs", ("seen-online.jpg", copy_of(work), "image/jpeg")),
        ],
    )
    assert filed.status_code == 201, filed.text
    body = service.settled(filed.json(), "holder")
    check_id = released["check_id"]
    assert body["measures"]["found_by_image"] == {"seen-online.jpg": [check_id]}
    assert check_id in body["check_ids"]
    assert body["measures"]["named_checks"][check_id] == "matches_now"
    notice_id = body["notice_id"]

    def affected(who: str) -> list[dict[str, Any]]:
        got = service.client.get(f"/v1/notices/{notice_id}", headers=service.h(who))
        assert got.status_code == 200, got.text
        items: list[dict[str, Any]] = got.json()["measures"]["affected"]
        return items

    assert all("platform" not in a for a in body["measures"]["affected"])
    held = [a for a in affected("holder") if a["check_id"] == check_id]
    assert held and "platform" not in held[0]
    listed = service.client.get("/v1/notices", headers=service.h("holder")).json()["items"]
    assert "genco" not in str(listed)
    assert any(a.get("platform") == "genco" for a in affected("operator"))

    # The holder may open the check its notice found (without platform or prompt) ...
    record = service.client.get(f"/v1/checks/{check_id}", headers=service.h("holder"))
    assert record.status_code == 200, record.text
    shown = record.json()
    assert shown["platform"] == "" and "secret prompt" not in record.text
    assert shown["rescreen"]["notice_id"] == notice_id
    # ... another holder may not, and the platform is told to take the output down.
    assert (
        service.client.get(f"/v1/checks/{check_id}", headers=service.h("holder2")).status_code
        == 404
    )
    page = service.client.get(
        "/v1/checks", params={"takedown": "true"}, headers=service.h("platform")
    ).json()
    assert [c["check_id"] for c in page["items"]] == [check_id]
    assert page["items"][0]["action"] == "take_down"
    rest = service.client.get(
        "/v1/checks", params={"takedown": "false"}, headers=service.h("platform")
    ).json()
    assert check_id not in [c["check_id"] for c in rest["items"]]
    assert (
        service.client.get(
            "/v1/checks", params={"takedown": "true"}, headers=service.h("platform2")
        ).json()["items"]
        == []
    )

    view = service.client.get("/v1/works/noticed-1", headers=service.h("holder")).json()
    assert [r["origin"] for r in view["references"]] == [{"kind": "notice", "source": notice_id}]


def test_risk_prompts_name_the_rights_holder_by_its_display_name(service: Service) -> None:
    image = scene(2405, (320, 240))
    assert service.register("holder2", "named-1", encode(image)).status_code == 201
    set_name = service.client.put(
        "/v1/owners/gorgon-studio",
        headers=service.h("holder2"),
        json={"display_name": "戈耳工作室"},
    )
    assert set_name.status_code == 200, set_name.text
    assert set_name.json() == {"owner": "gorgon-studio", "display_name": "戈耳工作室"}
    refused = service.client.put(
        "/v1/owners/gorgon-studio", headers=service.h("holder"), json={"display_name": "x"}
    )
    assert refused.status_code == 403
    blocked = only(service.check("platform", copy_of(image)))
    assert blocked["decision"] == "block"
    prompt = blocked["risk_prompt"]
    assert "戈耳工作室" in prompt["zh"] and "戈耳工作室" in prompt["en"]
    assert "gorgon-studio" not in prompt["zh"] + prompt["en"]
    cleared = service.client.put(
        "/v1/owners/gorgon-studio", headers=service.h("operator"), json={"display_name": ""}
    )
    assert cleared.json()["display_name"] == "gorgon-studio"


def test_a_holder_is_named_only_the_outputs_found_by_image_that_match_its_work(
    service: Service,
) -> None:
    """An uploaded output's image may find another platform's released output that has
    nothing to do with the holder's work: the holder is not given its check id; operators
    see every check found."""
    work = scene(2406, (400, 300))
    unrelated = scene(2407, (400, 300))
    elsewhere = only(service.check("platform2", encode(unrelated, "JPEG", quality=92)))
    copied = only(service.check("platform", encode(work, "JPEG", quality=92)))
    assert elsewhere["decision"] == copied["decision"] == "allow"
    filed = service.client.post(
        "/v1/notices",
        headers=service.h("holder"),
        data={"work_id": "noticed-2", "title": "另一部作品"},
        files=[
            ("images", ("work.png", encode(work), "image/png")),
            ("outputs", ("ours.jpg", copy_of(work), "image/jpeg")),
            ("outputs", ("not-ours.jpg", copy_of(unrelated), "image/jpeg")),
        ],
    )
    assert filed.status_code == 201, filed.text
    notice_id = service.settled(filed.json(), "holder")["notice_id"]
    hidden = elsewhere["check_id"]

    one = service.client.get(f"/v1/notices/{notice_id}", headers=service.h("holder"))
    listed = service.client.get("/v1/notices", headers=service.h("holder"))
    job_id = one.json()["job"]["job_id"]
    job = service.client.get(f"/v1/jobs/{job_id}", headers=service.h("holder"))
    assert one.status_code == listed.status_code == job.status_code == 200
    for shown in (filed.text, one.text, listed.text, job.text):
        assert hidden not in shown
    # The job's result names what the notice's measures name, for the holder too.
    assert job.json()["result"]["found_by_image"] == {
        "ours.jpg": [copied["check_id"]],
        "not-ours.jpg": [],
    }
    operator_job = service.client.get(f"/v1/jobs/{job_id}", headers=service.h("operator"))
    assert hidden in operator_job.text
    body = one.json()
    assert body["measures"]["found_by_image"] == {
        "ours.jpg": [copied["check_id"]],
        "not-ours.jpg": [],
    }
    assert body["measures"]["named_checks"] == {copied["check_id"]: "matches_now"}
    assert body["check_ids"] == [copied["check_id"]]
    operator = service.client.get(f"/v1/notices/{notice_id}", headers=service.h("operator"))
    found = operator.json()["measures"]["found_by_image"]
    assert found == {"ours.jpg": [copied["check_id"]], "not-ours.jpg": [hidden]}
    assert operator.json()["measures"]["named_checks"][hidden] == "unknown"
