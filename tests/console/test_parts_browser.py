"""A character in a new pose, in a real browser: the platform's own check carries the
matched parts through the API (another rights holder gets 404), and the operator's review
page and check page show each part over the generated image, in the colours of the
evidence picture, with its inlier count, in English and in zh-CN."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.articulated import NEW_POSE, REST, figure
from tests.console.conftest import Console, SignIn, screenshot
from tests.service.conftest import encode

pytestmark = pytest.mark.slow


def test_a_new_pose_shows_its_parts_to_those_who_may_see_the_check(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    made = console.api.post(
        "/v1/works",
        headers=console.h("holder"),
        data={"work_id": "figure", "title": "Figure"},
        files=[("images", ("figure.png", encode(figure(REST)), "image/png"))],
    )
    assert made.status_code == 201, made.text
    bands = console.api.put(
        "/v1/works/figure/thresholds",
        headers=console.h("operator"),
        json={"review": 0.5, "block": 1.0},  # never block: the check waits for review
    )
    assert bands.status_code == 200, bands.text
    response = console.api.post(
        "/v1/check",
        headers=console.h("platform"),
        files=[("images", ("pose.png", encode(figure(NEW_POSE)), "image/png"))],
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["decision"] == "review", result["fused_score"]
    check_id = result["check_id"]

    # The platform reads its own check back with the parts; another rights holder, whose
    # work did not match, does not see the check at all.
    own = console.api.get(f"/v1/checks/{check_id}", headers=console.h("platform"))
    assert own.status_code == 200, own.text
    match = own.json()["verdict"]["matches"][0]
    assert match["work_id"] == "figure"
    parts = match["character"]["parts"]
    assert len(parts) >= 2 and match["local"]["parts"] == parts
    assert match["signals"]["part_inliers"] == sum(p["inliers"] for p in parts)
    other = console.api.get(f"/v1/checks/{check_id}", headers=console.h("holder2"))
    assert other.status_code == 404

    page = sign_in("operator")
    assert page.url.endswith("/console/review")
    item = page.locator(f"article.review[data-check='{check_id}']")
    evidence = item.locator(".character-evidence")
    text = evidence.inner_text()
    for i, part in enumerate(parts, start=1):
        assert f"part {i}: {part['inliers']} inliers" in text
    polygons = item.locator("svg.overlay polygon.part")
    assert polygons.count() == len(parts)
    second = polygons.nth(1)
    assert second.evaluate("e => getComputedStyle(e).stroke") == "rgb(240, 140, 0)"
    assert second.get_attribute("data-inliers") == str(parts[1]["inliers"])
    screenshot(page, tmp_path, "review-parts-en")

    page.goto(f"{console.url}/checks/{check_id}")
    assert page.locator(".character-evidence ol.parts li").count() == len(parts)

    zh = sign_in("operator", locale="zh-CN")
    chinese = zh.locator(f"article.review[data-check='{check_id}'] .character-evidence")
    assert "角色证据" in chinese.inner_text()
    assert f"部件 1：{parts[0]['inliers']} 个内点" in chinese.inner_text()
