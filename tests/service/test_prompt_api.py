"""POST /v1/prompt: a platform screens a prompt before generating, and the check is
audited; on SQLite and on a real PostgreSQL (see conftest)."""

from __future__ import annotations

import pytest

from screener.core.samples import scene
from tests.service.conftest import Service, encode

pytestmark = pytest.mark.slow


def test_platform_screens_prompts_before_generating(service: Service) -> None:
    made = service.register(
        "holder",
        "prompt-hero",
        encode(scene(31)),
        title="Zorvex Prime",
        aliases=["佐维克斯"],
        related_terms=["iron comet ship", "violet jetpack"],
    )
    assert made.status_code == 201, made.text
    assert made.json()["related_terms"] == ["iron comet ship", "violet jetpack"]

    refused = service.client.post(
        "/v1/prompt",
        headers=service.h("platform"),
        json={"prompt": "Z o r v e x  P r i m e on a poster", "user_ref": "u-1"},
    )
    assert refused.status_code == 200, refused.text
    body = refused.json()
    assert body["decision"] == "refuse"
    assert body["prompt"] == "Z o r v e x  P r i m e on a poster"
    top = body["matches"][0]
    assert (top["work_id"], top["title"], top["owner"]) == (
        "prompt-hero",
        "Zorvex Prime",
        "tsuburaya",
    )
    assert top["terms"] == [
        {"term": "Zorvex Prime", "matched_as": "Z o r v e x  P r i m e", "how": "separator"}
    ]
    assert (
        "Zorvex Prime" in body["risk_prompt"]["zh"] and "Zorvex Prime" in body["risk_prompt"]["en"]
    )

    audit = service.client.get(
        "/v1/audit",
        headers=service.h("operator"),
        params={"after": body["audit_seq"] - 1, "limit": 1},
    )
    assert audit.status_code == 200, audit.text
    record = audit.json()[0]
    assert (record["action"], record["subject"]) == ("prompt.check", body["prompt_check_id"])
    assert record["payload"]["decision"] == "refuse"
    assert record["payload"]["matched_works"] == ["prompt-hero"]
    assert record["payload"]["user_ref"] == "u-1"
    assert "prompt" not in record["payload"]  # its sha256 only
    warned = service.client.post(
        "/v1/prompt",
        headers=service.h("platform"),
        json={"prompt": "a pilot with a violet jetpack on an iron comet ship"},
    ).json()
    assert warned["decision"] == "warn"
    assert {t["how"] for t in warned["matches"][0]["terms"]} == {"related"}
    one_term = service.client.post(
        "/v1/prompt", headers=service.h("platform"), json={"prompt": "a violet jetpack"}
    ).json()
    assert (one_term["decision"], one_term["matches"], one_term["risk_prompt"]) == (
        "allow",
        [],
        None,
    )


def test_prompt_checks_are_for_platforms_and_operators(service: Service) -> None:
    body = {"prompt": "a quiet lake at dawn"}
    operator = service.client.post("/v1/prompt", headers=service.h("operator"), json=body)
    assert operator.status_code == 200, operator.text
    assert operator.json()["decision"] == "allow"
    for who in ("holder", "admin"):
        refused = service.client.post("/v1/prompt", headers=service.h(who), json=body)
        assert refused.status_code == 403, (who, refused.text)
    assert service.client.post("/v1/prompt", json=body).status_code == 401
    empty = service.client.post("/v1/prompt", headers=service.h("platform"), json={"prompt": ""})
    assert empty.status_code == 422
    long = service.client.post(
        "/v1/prompt", headers=service.h("platform"), json={"prompt": "x" * 2001}
    )
    assert long.status_code == 422
