"""Every auth rule: 401 without a valid key; 403 for the wrong role; 404 (never the
data) for another owner's object."""

from __future__ import annotations

import pytest

from screener.core.samples import scene
from tests.service.conftest import Service, encode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(service: Service) -> dict[str, str]:
    """A work of each rights holder, and a blocked check by the first platform."""
    mine, theirs = scene(101), scene(102)
    assert service.register("holder", "auth-mine", encode(mine)).status_code == 201
    assert service.register("holder2", "auth-theirs", encode(theirs)).status_code == 201
    checked = service.check("platform", encode(mine, "JPEG", quality=85))
    result = checked.json()["results"][0]
    assert result["decision"] == "block"
    return {"check_id": result["check_id"]}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk_k_aaaaaaaa_wrongsecretwrongsecretwrongsecret12"},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
def test_missing_or_wrong_key_is_401(service: Service, headers: dict[str, str]) -> None:
    for method, url in (
        ("GET", "/v1/works"),
        ("GET", "/v1/checks"),
        ("GET", "/v1/review"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/keys"),
    ):
        response = service.client.request(method, url, headers=headers)
        assert response.status_code == 401, (url, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    response = service.client.post(
        "/v1/check", headers=headers, files={"images": ("a.png", encode(scene(1)), "image/png")}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("who", "method", "url", "body"),
    [
        ("platform", "GET", "/v1/works", None),
        ("platform", "GET", "/v1/review", None),
        ("platform", "GET", "/v1/audit", None),
        ("platform", "GET", "/v1/policy", None),
        ("platform", "GET", "/v1/keys", None),
        ("holder", "GET", "/v1/review", None),
        ("holder", "GET", "/v1/audit/verify", None),
        ("holder", "GET", "/v1/keys", None),
        ("holder", "PUT", "/v1/works/auth-mine/thresholds", {"review": 0.5}),
        ("operator", "GET", "/v1/keys", None),
        ("operator", "POST", "/v1/keys", {"role": "admin", "owner": "x"}),
    ],
)
def test_wrong_role_is_403(
    service: Service,
    seeded: dict[str, str],
    who: str,
    method: str,
    url: str,
    body: dict[str, object] | None,
) -> None:
    del seeded
    response = service.client.request(method, url, headers=service.h(who), json=body)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


def test_platform_cannot_check_as_another_or_manage_works(service: Service) -> None:
    registered = service.register("platform", "by-platform", encode(scene(103)))
    assert registered.status_code == 403
    holder_check = service.check("holder", encode(scene(104)))
    assert holder_check.status_code == 403


def test_rights_holder_sees_only_its_own_works(service: Service, seeded: dict[str, str]) -> None:
    del seeded
    own = service.client.get("/v1/works", headers=service.h("holder")).json()
    assert {w["owner"] for w in own["items"]} == {"tsuburaya"}
    assert "auth-theirs" not in [w["work_id"] for w in own["items"]]
    everything = service.client.get("/v1/works?limit=500", headers=service.h("operator")).json()
    assert {"auth-mine", "auth-theirs"} <= {w["work_id"] for w in everything["items"]}

    for method, url in (
        ("GET", "/v1/works/auth-theirs"),
        ("DELETE", "/v1/works/auth-theirs"),
        ("DELETE", "/v1/works/auth-theirs/references/1"),
        ("PUT", "/v1/works/auth-theirs/licensees"),
    ):
        body = {"licensees": ["genco"]} if method == "PUT" else None
        response = service.client.request(method, url, headers=service.h("holder"), json=body)
        assert response.status_code == 404, (url, response.text)
        assert response.json()["error"]["code"] == "not_found"
        assert "gorgon-studio" not in response.text  # nothing of the other owner's
    added = service.client.post(
        "/v1/works/auth-theirs/references",
        headers=service.h("holder"),
        files={"images": ("x.png", encode(scene(105)), "image/png")},
    )
    assert added.status_code == 404
    # the work is intact for its owner
    theirs = service.client.get("/v1/works/auth-theirs", headers=service.h("holder2")).json()
    assert theirs["reference_count"] == 1


def test_rights_holder_cannot_register_for_another_owner(service: Service) -> None:
    response = service.register("holder", "for-someone", encode(scene(106)), owner="gorgon-studio")
    assert response.status_code == 403
    made = service.register("operator", "for-someone", encode(scene(106)), owner="gorgon-studio")
    assert made.status_code == 201
    assert made.json()["owner"] == "gorgon-studio"


def test_checks_are_seen_by_their_platform_and_matched_owners_only(
    service: Service, seeded: dict[str, str]
) -> None:
    url = f"/v1/checks/{seeded['check_id']}"
    assert service.client.get(url, headers=service.h("platform")).status_code == 200
    assert service.client.get(url, headers=service.h("operator")).status_code == 200
    assert service.client.get(url, headers=service.h("platform2")).status_code == 404
    assert service.client.get(f"{url}/evidence", headers=service.h("platform2")).status_code == 404
    assert service.client.get(url, headers=service.h("holder2")).status_code == 404

    seen = service.client.get(url, headers=service.h("holder"))
    assert seen.status_code == 200
    record = seen.json()
    assert record["platform"] == ""  # who generated it is the platform's business
    assert record["user_ref"] is None
    assert {m["owner"] for m in record["verdict"]["matches"]} == {"tsuburaya"}
    listed = service.client.get("/v1/checks", headers=service.h("holder")).json()
    assert seeded["check_id"] in [c["check_id"] for c in listed["items"]]
    other = service.client.get("/v1/checks", headers=service.h("platform2")).json()
    assert seeded["check_id"] not in [c["check_id"] for c in other["items"]]


def test_platform_and_other_holders_cannot_touch_notices(
    service: Service, seeded: dict[str, str]
) -> None:
    del seeded
    response = service.client.post(
        "/v1/notices", headers=service.h("platform"), data={"work_id": "auth-mine"}
    )
    assert response.status_code == 403
    response = service.client.post(
        "/v1/notices",
        headers=service.h("holder2"),
        data={"work_id": "auth-mine"},
        files={"images": ("x.png", encode(scene(107)), "image/png")},
    )
    # Another owner's work: refused as a create of a taken id is, naming no owner.
    assert response.status_code == 409
    assert "not available" in response.json()["error"]["message"]
    assert "tsuburaya" not in response.text
    assert (
        service.client.get("/v1/works/auth-mine", headers=service.h("holder")).json()[
            "reference_count"
        ]
        == 1
    )
