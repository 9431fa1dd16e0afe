"""The console's sessions, headers and the desk duties it added, in-process on SQLite
(the browser flows are in test_browser.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from screener.core import policy as policy_mod
from screener.core.errors import Conflict, Forbidden, NotFound, PolicyError
from screener.core.samples import scene
from screener.duties.desk import Desk, Upload
from screener.matching.pipeline import Screener
from screener.service.console.web import SESSION_COOKIE, safe_next
from screener.service.settings import ServiceSettings
from screener.store.keys import ApiKey
from tests.service.conftest import Service, encode, running_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("console-pages")) as running:
        yield running


def desk(service: Service) -> Desk:
    found: Desk = service.app.state.runtime.desk
    return found


def key(service: Service, who: str) -> ApiKey:
    return desk(service).authenticate(service.keys[who])


def sign_in(service: Service, who: str) -> TestClient:
    client = TestClient(service.app, base_url="https://testserver")
    page = client.get("/console/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    done = client.post(
        "/console/login",
        data={"api_key": service.keys[who], "login_csrf": token.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    cookie = done.headers["set-cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Path=/console"):
        assert flag in cookie, cookie
    return client


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_sign_in_needs_a_valid_key_and_the_login_token(service: Service) -> None:
    client = TestClient(service.app, base_url="https://testserver")
    anonymous = client.get("/console/works", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=/console/works"
    page = client.get("/console/login")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    wrong = client.post("/console/login", data={"api_key": "sk_nope", "login_csrf": token.group(1)})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    forged = TestClient(service.app, base_url="https://testserver").post(
        "/console/login", data={"api_key": service.keys["holder"], "login_csrf": "x"}
    )
    assert forged.status_code == 403
    # A "next" outside the console is ignored.
    token2 = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/console/login").text)
    assert token2 is not None
    away = client.post(
        "/console/login",
        data={
            "api_key": service.keys["holder"],
            "login_csrf": token2.group(1),
            "next": "https://elsewhere.example/",
        },
        follow_redirects=False,
    )
    assert away.headers["location"] == "/console/works"


@pytest.mark.parametrize(
    "target",
    [
        "/console/../v1/keys",
        "/console/%2e%2e/v1/keys",
        "/console/%252e%252e/v1/keys",
        "/console/works/..",
        "/console/./works",
        "/console//elsewhere.example/",
        "/console/%2f%2felsewhere.example",
        "/console\\..\\v1/keys",
        "/console/%5c../v1/keys",
        "//elsewhere.example/console/",
        "https://elsewhere.example/console/works",
        "javascript:alert(1)//console/",
        "/console/works\r\nLocation: /v1",
        "/v1/keys",
        "/consolex/works",
    ],
)
def test_sign_in_returns_only_to_console_pages(service: Service, target: str) -> None:
    assert safe_next(target) == ""
    client = TestClient(service.app, base_url="https://testserver")
    token = re.search(r'name="login_csrf" value="([^"]+)"', client.get("/console/login").text)
    assert token is not None
    done = client.post(
        "/console/login",
        data={"api_key": service.keys["holder"], "login_csrf": token.group(1), "next": target},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/works"


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/console/works", "/console/works"),
        ("/console/checks?decision=block&page=2", "/console/checks?decision=block&page=2"),
        (
            "/console/works/%E5%A5%A5%E7%89%B9%E6%9B%BC",
            "/console/works/%E5%A5%A5%E7%89%B9%E6%9B%BC",
        ),
        ("/console/works#top", "/console/works"),
    ],
)
def test_sign_in_keeps_a_console_page_to_return_to(target: str, kept: str) -> None:
    assert safe_next(target) == kept


def test_roles_see_only_their_pages_and_sign_out_ends_the_session(service: Service) -> None:
    platform = sign_in(service, "platform")
    assert platform.get("/console/try").status_code == 200
    for page in ("/console/review", "/console/policy", "/console/dashboard", "/console/works"):
        assert platform.get(page).status_code == 403, page
    holder = sign_in(service, "holder")
    assert holder.get("/console/review").status_code == 403
    assert holder.get("/console/try").status_code == 403
    operator = sign_in(service, "operator")
    for page in ("/console/review", "/console/checks", "/console/policy", "/console/dashboard"):
        assert operator.get(page).status_code == 200, page
    token = csrf(operator, "/console/review")
    out = operator.post("/console/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and SESSION_COOKIE in out.headers["set-cookie"]
    assert operator.get("/console/review", follow_redirects=False).status_code == 303


def test_a_rejected_form_keeps_what_was_typed(service: Service) -> None:
    holder = sign_in(service, "holder")
    token = csrf(holder, "/console/works")
    refused = holder.post(
        "/console/works",
        data={"csrf_token": token, "work_id": "kept", "title": "孫悟空", "aliases": "Sun Wukong"},
    )
    assert refused.status_code == 422
    assert "at least one reference image" in refused.text
    assert 'value="孫悟空"' in refused.text and "Sun Wukong</textarea>" in refused.text


def test_update_work_and_images_follow_the_owner_rules(service: Service) -> None:
    the_desk = desk(service)
    holder, other, platform = (key(service, w) for w in ("holder", "holder2", "platform"))
    image = encode(scene(9101))
    made = the_desk.create_work(holder, "edit-me", [Upload(image, "a.png")])
    updated = the_desk.update_work(
        holder,
        "edit-me",
        title=" Journey to the West ",
        aliases=["西游记", " ", "西游记", "Saiyūki"],
    )
    assert updated.title == "Journey to the West"
    assert updated.aliases == ("西游记", "Saiyūki")
    with pytest.raises(NotFound):
        the_desk.update_work(other, "edit-me", title="mine now")
    reference = made.added_references[0]
    assert the_desk.reference_image(holder, "edit-me", reference) == image
    with pytest.raises(NotFound):
        the_desk.reference_image(other, "edit-me", reference)
    with pytest.raises(Forbidden):
        the_desk.reference_image(platform, "edit-me", reference)
    actions = [r.action for r in the_desk.audit.records(0, 10_000) if r.subject == "edit-me"]
    assert "work.update" in actions


def test_find_checks_filters_and_dashboard_counts(service: Service) -> None:
    the_desk = desk(service)
    operator, holder, other = (key(service, w) for w in ("operator", "holder", "holder2"))
    original = scene(9201)
    assert service.register("holder", "found-work", encode(original)).status_code == 201
    blocked = service.check("platform", encode(original, "JPEG", quality=85)).json()["results"][0]
    allowed = service.check("platform2", encode(scene(9202), "JPEG")).json()["results"][0]
    assert (blocked["decision"], allowed["decision"]) == ("block", "allow")

    def ids(**filters: Any) -> set[str]:
        items, total = the_desk.find_checks(operator, **filters)
        assert total == len(items)
        return {c.id for c in items}

    assert blocked["check_id"] in ids(decision="block", work_id="found-work")
    assert allowed["check_id"] not in ids(work_id="found-work")
    assert ids(platform="othergen") >= {allowed["check_id"]}
    assert blocked["check_id"] not in ids(platform="othergen")
    today = dt.datetime.now(dt.UTC).date()
    assert blocked["check_id"] in ids(since=today, until=today)
    assert not ids(until=today - dt.timedelta(days=2))
    mine, _ = the_desk.find_checks(holder, work_id="found-work")
    assert [c.id for c in mine] == [blocked["check_id"]]
    with pytest.raises(NotFound):
        the_desk.find_checks(other, work_id="found-work")

    board = the_desk.dashboard(operator)
    counts = board["counts"]
    assert counts.per_day["block"][-1] >= 1 and counts.per_day["allow"][-1] >= 1
    assert sum(sum(v) for v in counts.per_day.values()) == counts.total_checks
    assert ("found-work", 1) in counts.top_works
    assert board["index_sizes"]["sscd"] > 0
    with pytest.raises(Forbidden):
        the_desk.dashboard(holder)


def test_policy_is_previewed_replaced_audited_and_kept_across_a_restart(
    service: Service, tmp_path: Path
) -> None:
    the_desk = desk(service)
    operator, holder = key(service, "operator"), key(service, "holder")
    current = the_desk.screener.policy
    with pytest.raises(PolicyError, match="same version"):
        the_desk.preview_policy(operator, policy_mod.dumps(current))
    with pytest.raises(PolicyError, match=r"not valid YAML|not a valid policy"):
        the_desk.preview_policy(operator, b"version: [")
    with pytest.raises(Forbidden):
        the_desk.preview_policy(holder, b"version: x")
    text = policy_mod.dumps(current).replace(current.version, "console-test-2")
    text = text.replace(f"review: {current.bands.review}", "review: 0.61", 1)
    preview = the_desk.preview_policy(operator, text)
    assert {c.path for c in preview.changes} == {"version", "bands.review"}
    assert the_desk.screener.policy is current  # nothing changed yet
    with pytest.raises(Conflict):
        the_desk.replace_policy(operator, text, "some-other-version")
    the_desk.replace_policy(operator, text, current.version)
    assert the_desk.screener.policy.version == "console-test-2"
    assert the_desk.screener.policy.bands.review == 0.61
    record = the_desk.audit.records(the_desk.audit.head().seq - 1, 10)[-1]
    assert record.action == "policy.replace" and record.payload["replaced"] == current.version

    # A restart on the same data keeps it; a newer configured policy file wins.
    settings = ServiceSettings(data_dir=service.data_dir, signals=["pdq"])
    with Screener(settings) as screener:
        assert Desk(screener).screener.policy.version == "console-test-2"
    newer = tmp_path / "newer.yaml"
    newer.write_text(policy_mod.dumps(current).replace(current.version, "deployed-3"))
    with Screener(
        ServiceSettings(data_dir=service.data_dir, signals=["pdq"], policy_path=newer)
    ) as screener:
        assert Desk(screener).screener.policy.version == "deployed-3"


def test_a_reference_or_held_id_out_of_range_is_refused_not_a_server_error(
    service: Service,
) -> None:
    """Ids in console paths are bounded as the API's are: one the database cannot hold is
    refused (422) on every page and form that takes one, never a server error."""
    holder = key(service, "holder")
    desk(service).create_work(holder, "bounded", [Upload(encode(scene(9171)), "a.png")])
    huge = 2**70
    client = sign_in(service, "holder")
    operator = sign_in(service, "operator")
    for path in (
        f"/console/works/bounded/held/{huge}/image",
        f"/console/works/bounded/references/{huge}/image",
    ):
        for who in (client, operator):
            response = who.get(path)
            assert response.status_code == 422, (path, response.status_code)
    token = csrf(operator, "/console/held")
    for action in ("approve", "reject"):
        response = operator.post(
            f"/console/works/bounded/held/{huge}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 422, (action, response.status_code)
    removal = client.post(
        f"/console/works/bounded/references/{huge}/remove",
        data={"csrf_token": csrf(client, "/console/works/bounded")},
    )
    assert removal.status_code == 422, removal.status_code
