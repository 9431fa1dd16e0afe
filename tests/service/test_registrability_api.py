"""Registration abuse over HTTP (issue 17, item 4): a flat image is refused with 422 and
the rule; a stock picture is held, a rights holder sees their own held references with
why, operators alone approve or reject them (audited), and the console lists them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from screener import Screener, Settings
from screener.core.samples import drawing, scene
from screener.matching.background import MIN_IMAGES
from tests.console.test_pages import csrf, sign_in
from tests.images import png
from tests.service.conftest import Service, running_service

SIGNALS = ["phash", "pdq", "sscd"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def banked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The service over a data directory whose background bank holds stock pictures."""
    data = tmp_path_factory.mktemp(f"held-{request.param}")
    settings: dict[str, Any] = {"signals": SIGNALS}
    if request.param == "postgresql":
        settings["database_url"] = request.getfixturevalue("postgres").create_database()
    generic = data / "generic"
    generic.mkdir()
    for k in range(MIN_IMAGES + 4):
        (drawing(800 + k) if k % 2 else scene(800 + k)).save(generic / f"g{k:02d}.png")
    with Screener(Settings(data_dir=data, **settings)) as screener:
        screener.build_background(sorted(generic.iterdir()), "test stock pictures")
    with running_service(data, **settings) as service:
        yield service


def test_a_flat_image_is_refused_with_the_rule_and_plain_outputs_stay_allowed(
    banked: Service,
) -> None:
    for colour in [(0, 0, 255), (255, 255, 255), (0, 0, 0)]:
        response = banked.register("holder", "flat", png(Image.new("RGB", (512, 512), colour)))
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "not_registrable"
        assert "registration.min_content_side" in error["message"]
    one = banked.register("holder", "one-pixel", png(Image.new("RGB", (1, 1), (0, 0, 255))))
    assert one.status_code == 422 and "content_side 0 <" in one.json()["error"]["message"]
    gone = banked.client.get("/v1/works/flat", headers=banked.h("holder"))
    assert gone.status_code == 404
    for colour in [(0, 0, 255), (255, 255, 255), (0, 0, 0)]:
        checked = banked.check("platform", png(Image.new("RGB", (512, 512), colour)))
        assert checked.json()["results"][0]["decision"] == "allow", checked.text


def test_a_stock_picture_is_held_and_only_operators_approve_it(banked: Service) -> None:
    stock, mine = png(scene(800)), png(drawing(9))
    created = banked.register("holder", "stocky", stock, mine)
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(body["references_added"]) == 1 and body["reference_count"] == 1
    (held,) = body["references_held"]
    assert held["findings"][0]["rule"] == "registration.bank_hold"
    assert held["findings"][0]["value"] >= held["findings"][0]["threshold"]
    held_id = held["held_id"]
    other = banked.register("holder2", "stocky2", png(scene(802)))
    other_id = other.json()["references_held"][0]["held_id"]

    # A rights holder sees their own held references, with why; operators see all.
    own = banked.client.get("/v1/references/held", headers=banked.h("holder")).json()
    assert [h["held_id"] for h in own["items"]] == [held_id]
    assert own["items"][0]["findings"][0]["reason"].startswith("looks like an ordinary picture")
    everyone = banked.client.get("/v1/references/held", headers=banked.h("operator")).json()
    assert {h["held_id"] for h in everyone["items"]} >= {held_id, other_id}
    refused = banked.client.get("/v1/references/held", headers=banked.h("platform"))
    assert refused.status_code == 403
    work = banked.client.get("/v1/works/stocky", headers=banked.h("holder")).json()
    assert [h["held_id"] for h in work["references_held"]] == [held_id]
    image = banked.client.get(f"/v1/works/stocky/held/{held_id}/image", headers=banked.h("holder"))
    assert image.status_code == 200 and image.content == stock
    hidden = banked.client.get(
        f"/v1/works/stocky2/held/{other_id}/image", headers=banked.h("holder")
    )
    assert hidden.status_code == 404

    # Held: not screened against.
    assert banked.check("platform", stock).json()["results"][0]["decision"] == "allow"
    for who in ("holder", "platform"):
        denied = banked.client.post(
            f"/v1/works/stocky/held/{held_id}/approve", headers=banked.h(who)
        )
        assert denied.status_code in (403, 404), denied.text
    approved = banked.client.post(
        f"/v1/works/stocky/held/{held_id}/approve",
        headers=banked.h("operator"),
        json={"note": "the holder's own photograph"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["reference_count"] == 2
    again = banked.client.post(
        f"/v1/works/stocky/held/{held_id}/approve", headers=banked.h("operator")
    )
    assert again.status_code == 404
    flagged = banked.check("platform", stock).json()["results"][0]
    assert flagged["decision"] != "allow" and flagged["verdict"]["top_work_id"] == "stocky"

    rejected = banked.client.post(
        f"/v1/works/stocky2/held/{other_id}/reject", headers=banked.h("admin")
    )
    assert rejected.status_code == 200 and rejected.json()["reference_count"] == 0
    records = banked.client.get("/v1/audit?limit=1000", headers=banked.h("operator")).json()
    by_action = {r["action"]: r for r in records}
    assert by_action["work.approve_reference"]["payload"]["held_id"] == held_id
    assert by_action["work.reject_reference"]["payload"]["held_id"] == other_id
    verified = banked.client.get("/v1/audit/verify", headers=banked.h("operator")).json()
    assert verified["ok"], verified


def test_the_console_lists_held_references_and_operators_approve_them(banked: Service) -> None:
    held_id = banked.register("holder", "console-stock", png(scene(804))).json()["references_held"][
        0
    ]["held_id"]
    holder = sign_in(banked, "holder")
    own = holder.get("/console/held").text
    assert "console-stock" in own and "looks like an ordinary picture" in own
    assert "/approve" not in own  # rights holders see why, operators decide
    work_page = holder.get("/console/works/console-stock").text
    assert "Held for an operator" in work_page

    operator = sign_in(banked, "operator")
    page = operator.get("/console/held").text
    action = f"/works/console-stock/held/{held_id}/approve"
    assert action in page
    forged = operator.post("/console" + action, data={"csrf_token": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    assert banked.client.get("/v1/works/console-stock", headers=banked.h("holder")).json()[
        "references_held"
    ]
    done = operator.post(
        "/console" + action,
        data={"csrf_token": csrf(operator, "/console/held"), "note": "checked"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"].endswith("done=approved")
    work = banked.client.get("/v1/works/console-stock", headers=banked.h("holder")).json()
    assert work["reference_count"] == 1 and work["references_held"] == []


def test_a_notice_with_a_flat_image_is_refused_before_it_is_recorded(banked: Service) -> None:
    """A notice's images are registered after it is recorded (and again after a crash):
    one that can never be registered must be refused first, or the notice would be stuck."""
    filed = banked.client.post(
        "/v1/notices",
        headers=banked.h("holder"),
        data={"work_id": "flat-notice", "title": "Flat", "description": "a colour"},
        files=[("images", ("blue.png", png(Image.new("RGB", (64, 64), (0, 0, 255))), "image/png"))],
    )
    assert filed.status_code == 422, filed.text
    assert filed.json()["error"]["code"] == "not_registrable"
    notices = banked.client.get("/v1/notices", headers=banked.h("holder")).json()
    assert all(n["work_id"] != "flat-notice" for n in notices["items"])
