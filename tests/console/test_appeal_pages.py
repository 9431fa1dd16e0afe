"""The console's appeal pages in-process on SQLite: each role's view, the forms, and an
overdue appeal on the dashboard (the appeals' clock moved, never slept)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from PIL import ImageFilter

from screener.core.samples import scene
from tests.console.test_pages import csrf, sign_in
from tests.service.conftest import Service, encode, running_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("appeal-pages")) as running:
        yield running


def test_appeal_pages_follow_the_role_and_overdue_shows_on_the_dashboard(
    service: Service,
) -> None:
    original = scene(2801)
    assert service.register("holder", "paged", encode(original), title="Paged").status_code == 201
    copy = encode(original.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=80)
    held = service.check("platform", copy).json()["results"][0]
    assert held["decision"] == "block"

    platform = sign_in(service, "platform")
    filed = platform.post(
        "/console/appeals",
        data={
            "csrf_token": csrf(platform, "/console/appeals"),
            "check_id": held["check_id"],
            "statement": "drawn by hand from my sketch",
            "contact_ref": "ticket-4",
        },
    )
    assert filed.status_code == 200 and "Appeal filed" in filed.text
    assert "drawn by hand from my sketch" in filed.text and "ticket-4" in filed.text
    again = platform.post(
        "/console/appeals",
        data={
            "csrf_token": csrf(platform, "/console/appeals"),
            "check_id": held["check_id"],
            "statement": "twice",
        },
    )
    assert again.status_code == 409 and "already been appealed" in again.text
    appeal_id = service.client.get("/v1/appeals", headers=service.h("platform")).json()["items"][0][
        "appeal_id"
    ]

    holder = sign_in(service, "holder")
    page = holder.get("/console/appeals")
    assert appeal_id in page.text and "ticket-4" not in page.text and "genco" not in page.text
    assert appeal_id not in sign_in(service, "holder2").get("/console/appeals").text
    assert appeal_id not in sign_in(service, "platform2").get("/console/appeals").text

    operator = sign_in(service, "operator")
    board = operator.get("/console/dashboard")
    assert 'id="appeals-overdue"' in board.text
    assert ">0</a>" in board.text.split('id="appeals-overdue"')[1][:60]
    appeals = service.app.state.runtime.appeals
    before = appeals.clock
    appeals.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=15)
    try:
        late = operator.get("/console/dashboard").text.split('id="appeals-overdue"')[1][:60]
        assert ">2</a>" in late  # past both deadlines: no response, no decision
        queue = operator.get("/console/appeals?status=open").text
        assert "overdue: no response: no decision" in queue
    finally:
        appeals.clock = before

    answered = holder.post(
        f"/console/appeals/{appeal_id}/response",
        data={"csrf_token": csrf(holder, "/console/appeals"), "text": "our hero exactly"},
    )
    assert answered.status_code == 200 and "our hero exactly" in answered.text
    refused = platform.post(
        f"/console/appeals/{appeal_id}/decision",
        data={
            "csrf_token": csrf(platform, "/console/appeals"),
            "outcome": "overturned",
            "reason": "x",
        },
    )
    assert refused.status_code == 403
    decided = operator.post(
        f"/console/appeals/{appeal_id}/decision",
        data={
            "csrf_token": csrf(operator, "/console/appeals"),
            "outcome": "overturned",
            "reason": "an original drawing",
        },
    )
    assert decided.status_code == 200 and "output released" in decided.text
    status = platform.get("/console/appeals?status=overturned").text
    assert appeal_id in status and "an original drawing" in status
