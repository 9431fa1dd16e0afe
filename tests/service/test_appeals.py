"""Appeals through the API, on SQLite and a real PostgreSQL: every transition, every role
rule, the deadlines (with the appeals' clock moved, never slept) and the metrics."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from PIL import ImageFilter

from screener.core.samples import scene
from tests.service.conftest import Service, encode

pytestmark = pytest.mark.slow


def held_check(service: Service, seed: int, who: str = "platform", **form: Any) -> str:
    """A blocked check of ``who`` against a work of ``holder`` registered for it."""
    original = scene(seed)
    made = service.register("holder", f"appealed-{seed}", encode(original), title=f"W{seed}")
    assert made.status_code == 201, made.text
    copy = encode(original.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=80)
    response = service.check(who, copy, **form)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["decision"] == "block", result
    check_id: str = result["check_id"]
    return check_id


def appeal(service: Service, who: str, check_id: str, **body: Any) -> Any:
    return service.client.post(
        f"/v1/checks/{check_id}/appeal",
        headers=service.h(who),
        json={"statement": "I drew this myself", **body},
    )


@contextmanager
def clock_at(service: Service, moment: dt.datetime) -> Iterator[None]:
    """Move the appeals' clock (the one they read deadlines against) for a while."""
    appeals = service.app.state.runtime.appeals
    before = appeals.clock
    appeals.clock = lambda: moment
    try:
        yield
    finally:
        appeals.clock = before


def overdue_metric(service: Service, deadline: str) -> float:
    text = service.client.get("/metrics").text
    found = re.search(rf'^screener_appeals_overdue{{deadline="{deadline}"}} (\S+)$', text, re.M)
    assert found, text
    return float(found.group(1))


def test_an_overturned_appeal_releases_the_output_as_a_false_positive(service: Service) -> None:
    check_id = held_check(service, 2501, user_ref="user-7")
    filed = appeal(service, "platform", check_id, contact_ref="ticket-9")
    assert filed.status_code == 201, filed.text
    body = filed.json()
    appeal_id = body["appeal_id"]
    assert body["status"] == "open" and body["check_id"] == check_id
    assert body["works"] == ["appealed-2501"]
    assert body["contact_ref"] == "ticket-9" and body["platform"] == "genco"
    created = dt.datetime.fromisoformat(body["created_at"])
    assert dt.datetime.fromisoformat(body["respond_by"]) - created == dt.timedelta(days=7)
    assert dt.datetime.fromisoformat(body["decide_by"]) - created == dt.timedelta(days=14)
    assert not body["overdue"] and not body["released"]
    assert appeal(service, "platform", check_id).status_code == 409  # one per check

    # The rights holder whose work held it is told, without the user's details.
    told = service.client.get("/v1/appeals", headers=service.h("holder")).json()
    mine = [a for a in told["items"] if a["appeal_id"] == appeal_id]
    assert mine and mine[0]["statement"] == "I drew this myself"
    assert mine[0]["platform"] == "" and mine[0]["contact_ref"] is None
    answered = service.client.post(
        f"/v1/appeals/{appeal_id}/response",
        headers=service.h("holder"),
        json={"text": "It is our hero, scene for scene"},
    )
    assert answered.status_code == 200, answered.text
    assert [r["text"] for r in answered.json()["responses"]] == ["It is our hero, scene for scene"]
    assert answered.json()["responses"][0]["late"] is False

    # The platform's status view shows the response.
    status = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h("platform"))
    assert status.status_code == 200
    assert status.json()["responded_at"] and len(status.json()["responses"]) == 1

    assert (
        service.client.post(
            f"/v1/appeals/{appeal_id}/decision",
            headers=service.h("platform"),
            json={"outcome": "overturned", "reason": "mine"},
        ).status_code
        == 403
    )
    decided = service.client.post(
        f"/v1/appeals/{appeal_id}/decision",
        headers=service.h("operator"),
        json={"outcome": "overturned", "reason": "a different character"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "overturned" and decided.json()["released"] is True
    assert decided.json()["decision"]["reason"] == "a different character"

    check = service.client.get(f"/v1/checks/{check_id}", headers=service.h("platform")).json()
    assert check["review_status"] == "rejected"
    assert check["review"]["released"] is True and check["review"]["appeal_id"] == appeal_id
    false_positives = service.client.get(
        "/v1/review?status=rejected&limit=500", headers=service.h("operator")
    ).json()["items"]
    assert check_id in [c["check_id"] for c in false_positives]

    again = service.client.post(
        f"/v1/appeals/{appeal_id}/decision",
        headers=service.h("operator"),
        json={"outcome": "upheld", "reason": "second thoughts"},
    )
    assert again.status_code == 409
    late_answer = service.client.post(
        f"/v1/appeals/{appeal_id}/response", headers=service.h("holder"), json={"text": "more"}
    )
    assert late_answer.status_code == 409

    records = service.client.get("/v1/audit?limit=1000", headers=service.h("operator")).json()
    steps = [r["action"] for r in records if r["subject"] == appeal_id]
    assert steps == ["appeal.file", "appeal.respond", "appeal.overturned"]
    assert service.client.get("/v1/audit/verify", headers=service.h("operator")).json()["ok"]


def test_an_upheld_appeal_keeps_the_output_held(service: Service) -> None:
    check_id = held_check(service, 2502)
    appeal_id = appeal(service, "platform", check_id).json()["appeal_id"]
    decided = service.client.post(
        f"/v1/appeals/{appeal_id}/decision",
        headers=service.h("admin"),
        json={"outcome": "upheld", "reason": "a copy"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "upheld" and decided.json()["released"] is False
    check = service.client.get(f"/v1/checks/{check_id}", headers=service.h("platform")).json()
    assert check["decision"] == "block" and check["review_status"] is None
    upheld = service.client.get(
        "/v1/appeals?status=upheld&limit=500", headers=service.h("platform")
    )
    assert appeal_id in [a["appeal_id"] for a in upheld.json()["items"]]
    still_open = service.client.get(
        "/v1/appeals?status=open&limit=500", headers=service.h("platform")
    )
    assert appeal_id not in [a["appeal_id"] for a in still_open.json()["items"]]


def test_who_may_file_see_and_answer_an_appeal(service: Service) -> None:
    check_id = held_check(service, 2503)
    # Another platform's check answers as a missing one does: nothing leaks.
    other = appeal(service, "platform2", check_id)
    missing = appeal(service, "platform2", "chk_000000000000000000000000")
    assert other.status_code == missing.status_code == 404
    assert other.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert check_id in other.json()["error"]["message"]
    for who in ("holder", "operator"):
        assert appeal(service, who, check_id).status_code == 403
    assert appeal(service, "platform", check_id, statement="").status_code == 422

    appeal_id = appeal(service, "platform", check_id).json()["appeal_id"]
    # A rights holder sees appeals only against their own works; another platform none.
    for who in ("holder2", "platform2"):
        listed = service.client.get("/v1/appeals?limit=500", headers=service.h(who)).json()
        assert appeal_id not in [a["appeal_id"] for a in listed["items"]]
        alone = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h(who))
        assert alone.status_code == 404
    stranger = service.client.post(
        f"/v1/appeals/{appeal_id}/response", headers=service.h("holder2"), json={"text": "x"}
    )
    assert stranger.status_code == 404
    by_platform = service.client.post(
        f"/v1/appeals/{appeal_id}/response", headers=service.h("platform"), json={"text": "x"}
    )
    assert by_platform.status_code == 403
    # The allowed requests return the appeal itself.
    for who in ("holder", "platform", "operator"):
        seen = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h(who))
        assert seen.status_code == 200 and seen.json()["check_id"] == check_id
    operator_view = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h("operator"))
    assert operator_view.json()["platform"] == "genco"

    allowed = service.check("platform", encode(scene(2599), "JPEG")).json()["results"][0]
    assert allowed["decision"] == "allow"
    assert appeal(service, "platform", allowed["check_id"]).status_code == 409


def test_overdue_appeals_show_in_the_list_and_the_metrics(service: Service) -> None:
    check_id = held_check(service, 2504)
    appeal_id = appeal(service, "platform", check_id).json()["appeal_id"]
    assert overdue_metric(service, "respond") == 0
    assert overdue_metric(service, "decide") == 0
    filed = dt.datetime.now(dt.UTC)

    with clock_at(service, filed + dt.timedelta(days=8)):
        seen = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h("operator"))
        assert seen.json()["response_overdue"] and not seen.json()["decision_overdue"]
        assert overdue_metric(service, "respond") >= 1
        assert overdue_metric(service, "decide") == 0
        late = service.client.get(
            "/v1/appeals?overdue=true&limit=500", headers=service.h("operator")
        )
        assert appeal_id in [a["appeal_id"] for a in late.json()["items"]]

    with clock_at(service, filed + dt.timedelta(days=15)):
        assert overdue_metric(service, "decide") >= 1
        answered = service.client.post(
            f"/v1/appeals/{appeal_id}/response", headers=service.h("holder"), json={"text": "late"}
        )
        assert answered.json()["responses"][0]["late"] is True
        assert not answered.json()["response_overdue"]
        assert answered.json()["decision_overdue"]
        decided = service.client.post(
            f"/v1/appeals/{appeal_id}/decision",
            headers=service.h("operator"),
            json={"outcome": "upheld", "reason": "a copy"},
        )
        assert decided.json()["decision"]["late"] is True
        assert not decided.json()["overdue"]
        within = service.client.get(
            "/v1/appeals?overdue=false&limit=500", headers=service.h("operator")
        )
        assert appeal_id in [a["appeal_id"] for a in within.json()["items"]]


def test_a_rights_holder_sees_only_its_own_works_in_an_appeal(service: Service) -> None:
    """An output held by two owners' works: each rights holder is told of the appeal, but
    an appeal names to each only its own works (never another owner's), as checks do."""
    original = scene(2505)
    for who, work_id in (("holder", "shared-2505-a"), ("holder2", "shared-2505-b")):
        made = service.register(who, work_id, encode(original), title=work_id)
        assert made.status_code == 201, made.text
    copy = encode(original.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=80)
    result = service.check("platform", copy).json()["results"][0]
    matches = result["verdict"]["matches"]
    held_by = {m["work_id"] for m in matches if m["decision"] != "allow"}
    assert held_by == {"shared-2505-a", "shared-2505-b"}, result
    filed = appeal(service, "platform", result["check_id"])
    assert filed.status_code == 201, filed.text
    appeal_id = filed.json()["appeal_id"]
    assert filed.json()["works"] == ["shared-2505-a", "shared-2505-b"]
    for who, own in (("holder", "shared-2505-a"), ("holder2", "shared-2505-b")):
        alone = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h(who))
        assert alone.status_code == 200, alone.text
        assert alone.json()["works"] == [own]
        listed = service.client.get("/v1/appeals?limit=500", headers=service.h(who)).json()
        [mine] = [a for a in listed["items"] if a["appeal_id"] == appeal_id]
        assert mine["works"] == [own]
        answered = service.client.post(
            f"/v1/appeals/{appeal_id}/response", headers=service.h(who), json={"text": "ours"}
        )
        assert answered.status_code == 200 and answered.json()["works"] == [own]
    operator = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h("operator"))
    assert operator.json()["works"] == ["shared-2505-a", "shared-2505-b"]


def test_a_rights_holder_does_not_see_which_key_of_the_platform_filed(service: Service) -> None:
    check_id = held_check(service, 2506)
    appeal_id = appeal(service, "platform", check_id).json()["appeal_id"]
    platform_key = service.app.state.runtime.desk.authenticate(service.keys["platform"]).id
    seen = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h("holder"))
    assert seen.status_code == 200, seen.text
    assert [h["action"] for h in seen.json()["history"]] == ["filed"]
    assert platform_key not in seen.text
    own = service.client.get(f"/v1/appeals/{appeal_id}", headers=service.h("platform")).json()
    assert own["history"][0]["by"] == platform_key


def test_overturning_a_confirmed_check_withdraws_the_reference_its_confirmation_added(
    service: Service,
) -> None:
    original = scene(2531)
    assert service.register("holder", "appealed-2531", encode(original)).status_code == 201
    bands = service.client.put(
        "/v1/works/appealed-2531/thresholds",
        headers=service.h("operator"),
        json={"review": 0.5, "block": 1.0},  # never block: the crop goes to review
    )
    assert bands.status_code == 200, bands.text
    width, height = original.size
    crop = original.crop((width // 8, height // 8, width - width // 8, height - height // 8))
    held = service.check("platform", encode(crop)).json()["results"][0]
    assert held["decision"] == "review", held["fused_score"]
    check_id = held["check_id"]
    confirmed = service.client.post(
        f"/v1/review/{check_id}/confirm", headers=service.h("operator"), json={}
    )
    assert confirmed.status_code == 200, confirmed.text
    added = confirmed.json()["review"]["references_added"]
    assert len(added) == 1

    def references() -> list[int]:
        work = service.client.get("/v1/works/appealed-2531", headers=service.h("holder")).json()
        return [r["id"] for r in work["references"]]

    assert added[0] in references()
    filed = appeal(service, "platform", check_id)
    assert filed.status_code == 201, filed.text
    decided = service.client.post(
        f"/v1/appeals/{filed.json()['appeal_id']}/decision",
        headers=service.h("operator"),
        json={"outcome": "overturned", "reason": "the user's own drawing"},
    )
    assert decided.status_code == 200, decided.text
    # The false positive no longer blocks outputs like it: the output left the work.
    assert added[0] not in references() and len(references()) == 1
    records = service.client.get("/v1/audit?limit=1000", headers=service.h("operator")).json()
    removals = [r for r in records if r["action"] == "work.remove_reference"]
    assert [(r["payload"]["reference_id"], r["payload"]["check_id"]) for r in removals] == [
        (added[0], check_id)
    ]
    indexes = service.app.state.runtime.desk.screener.indexes
    assert all(report.ok for report in indexes.verify())  # the indexes agree with the catalog
    assert service.client.get("/v1/audit/verify", headers=service.h("operator")).json()["ok"]
