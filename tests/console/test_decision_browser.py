"""After a decision, in a real browser against `screener serve`: the evidence picture stays
the one decided on, the platform sees the outcome and what to take down, a rights holder
sees its own match and finds released outputs by their image, and operators and admins
do in forms what only the API did (thresholds, licensees, rejecting notices, keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from screener.core.samples import scene
from tests.console.conftest import Console, SignIn, screenshot
from tests.console.test_browser import api_check, centre_crop, copy_of, register, upload
from tests.service.conftest import encode

pytestmark = pytest.mark.slow

LOADED = (
    "() => { const i = document.getElementById('evidence-picture');"
    " return i.complete && i.naturalWidth > 0; }"
)


def reviewed(console: Console, work_id: str, seed: int) -> dict[str, Any]:
    """A check held for review against a new work (its thresholds never block)."""
    original = scene(seed)
    register(console, work_id, original, f"Work {seed}")
    bands = console.api.put(
        f"/v1/works/{work_id}/thresholds",
        headers=console.h("operator"),
        json={"review": 0.5, "block": 1.0},
    )
    assert bands.status_code == 200, bands.text
    held = api_check(console, centre_crop(original))
    assert held["decision"] == "review", held["fused_score"]
    return held


def evidence_of(page: Any, console: Console, check_id: str) -> bytes:
    page.goto(f"{console.url}/checks/{check_id}")
    page.locator("#evidence-picture").scroll_into_view_if_needed()
    page.wait_for_function(LOADED, timeout=30_000)
    fetched = page.request.get(f"{console.url}/checks/{check_id}/evidence.png")
    assert fetched.status == 200
    body: bytes = fetched.body()
    return body


def test_a_confirmed_check_keeps_its_picture_and_the_platform_sees_the_outcome(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    held = reviewed(console, "decided-1", 24101)
    platform = sign_in("platform")
    before = evidence_of(platform, console, held["check_id"])
    assert platform.locator("#action").get_attribute("data-action") == "hold"
    assert "review" in platform.locator("#action").inner_text().lower()

    operator = sign_in("operator")
    operator.goto(console.url + "/review")
    item = operator.locator(f"article.review[data-check='{held['check_id']}']")
    with operator.expect_navigation(url="**/console/review?done=confirmed"):
        item.locator("form[action$='/confirm'] button[type=submit]").click()

    after = evidence_of(platform, console, held["check_id"])
    assert after == before  # byte for byte: the picture the reviewer decided on
    assert platform.locator("#action").get_attribute("data-action") == "do_not_publish"
    outcome = platform.locator("#review-outcome").inner_text()
    assert "confirmed" in outcome and "decided-1" in outcome
    assert "before the review" in platform.locator("#risk-prompt h2").inner_text()
    screenshot(platform, tmp_path, "review-confirmed-outcome")

    cleared = reviewed(console, "decided-2", 24102)
    rejected = console.api.post(
        f"/v1/review/{cleared['check_id']}/reject",
        headers=console.h("operator"),
        json={"note": "an original drawing"},
    )
    assert rejected.status_code == 200, rejected.text
    platform.goto(f"{console.url}/checks/{cleared['check_id']}")
    assert platform.locator("#action").get_attribute("data-action") == "publish"
    assert "cleared" in platform.locator("#review-outcome").inner_text()
    screenshot(platform, tmp_path, "review-cleared-outcome")


def test_a_rights_holder_sees_the_evidence_picture_of_its_own_work(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    original = scene(24201)
    register(console, "holders-own", original, "迪迦奥特曼")
    blocked = api_check(console, copy_of(original))
    assert blocked["decision"] == "block"
    holder = sign_in("holder")
    picture = evidence_of(holder, console, blocked["check_id"])
    platform = sign_in("platform")
    assert picture == evidence_of(platform, console, blocked["check_id"])
    screenshot(holder, tmp_path, "holder-evidence")
    other = sign_in("holder2")
    refused = other.request.get(f"{console.url}/checks/{blocked['check_id']}/evidence.png")
    assert refused.status == 404


def test_a_notice_finds_a_released_output_by_its_image_and_the_platform_takes_it_down(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    work = scene(24301)
    released = api_check(console, encode(work, "JPEG", quality=92))
    assert released["decision"] == "allow"
    check_id = released["check_id"]

    holder = sign_in("holder")
    holder.goto(console.url + "/notices")
    holder.fill("input[name=new_work_id]", "noticed-hero")
    holder.fill("input[name=title]", "被投诉的作品")
    holder.set_input_files("input[name=images]", upload("work.png", encode(work)))
    holder.set_input_files(
        "input[name=outputs]", upload("seen-online.jpg", copy_of(work), "image/jpeg")
    )
    with holder.expect_navigation(url="**/console/notices/ntc_*"):
        holder.click("form[action$='/notices'] button[type=submit]")
    job_id = holder.locator("#job").get_attribute("data-job")
    assert job_id and job_id.startswith("job_")
    assert console.job_done(job_id, "holder")["state"] == "done"
    holder.reload()
    assert holder.locator("#job").get_attribute("data-state") == "done"
    found = holder.locator("#found-by-image")
    assert "seen-online.jpg" in found.inner_text() and check_id in found.inner_text()
    assert "genco" not in holder.content()  # the platform stays hidden from the holder
    screenshot(holder, tmp_path, "notice-found-by-image")
    with holder.expect_navigation(url=f"**/console/checks/{check_id}"):
        found.locator(f"a[href$='/checks/{check_id}']").click()
    assert holder.locator("h1").inner_text().startswith("Check")

    platform = sign_in("platform")
    platform.goto(console.url + "/takedown")
    row = platform.locator(f"#takedown tr[data-check='{check_id}']")
    assert row.count() == 1 and "noticed-hero" in row.inner_text()
    screenshot(platform, tmp_path, "takedown-list")
    with platform.expect_navigation(url=f"**/console/checks/{check_id}"):
        row.locator("a").first.click()
    banner = platform.locator("#action")
    assert banner.get_attribute("data-action") == "take_down"
    assert "Take this output down" in banner.inner_text()
    screenshot(platform, tmp_path, "takedown-check")
    platform.goto(console.url + "/try")
    recent = platform.locator(f"#recent tr[data-check='{check_id}']")
    assert "take down" in recent.inner_text()


def test_operator_and_admin_forms(console: Console, sign_in: SignIn, tmp_path: Path) -> None:
    register(console, "formed-1", scene(24401), "Formed work")
    operator = sign_in("operator")
    operator.on("dialog", lambda dialog: dialog.accept())
    operator.goto(console.url + "/works/formed-1")
    form = operator.locator("form#thresholds")
    form.locator("input[name=review]").fill("0.9")
    form.locator("input[name=block]").fill("0.2")
    form.locator("button[type=submit]").first.click()
    assert "review <= block" in operator.locator("#thresholds-error").inner_text()
    form = operator.locator("form#thresholds")
    form.locator("input[name=review]").fill("0.35")
    form.locator("input[name=block]").fill("0.95")
    with operator.expect_navigation(url="**/console/works/formed-1?done=thresholds"):
        form.locator("button[type=submit]").first.click()
    assert "0.3500" in operator.locator("p.meta").inner_text()
    licensees = operator.locator("form#licensees")
    licensees.locator("textarea[name=licensees]").fill("genco\nothergen")
    with operator.expect_navigation(url="**/console/works/formed-1?done=licensees"):
        licensees.locator("button[type=submit]").click()
    screenshot(operator, tmp_path, "work-thresholds-licensees")
    stored = console.api.get("/v1/works/formed-1", headers=console.h("operator")).json()
    assert stored["thresholds"] == {"review": 0.35, "block": 0.95}
    assert stored["licensees"] == ["genco", "othergen"]

    filed = console.api.post(
        "/v1/notices",
        headers=console.h("holder"),
        data={"work_id": "formed-1"},
        files=[("images", ("more.png", encode(scene(24402)), "image/png"))],
    )
    assert filed.status_code == 201, filed.text
    notice_id = filed.json()["notice_id"]
    assert console.job_done(filed.json()["job"]["job_id"])["state"] == "done"
    operator.goto(f"{console.url}/notices/{notice_id}")
    operator.fill("#reject-notice textarea[name=reason]", "not the holder's work")
    with operator.expect_navigation(url=f"**/console/notices/{notice_id}?done=notice_rejected"):
        operator.click("#reject-notice button[type=submit]")
    assert operator.locator("#notice-status").inner_text() == "rejected"
    screenshot(operator, tmp_path, "notice-rejected")

    admin = sign_in("admin")
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.goto(console.url + "/keys")
    admin.select_option("#create-key select[name=role]", "platform")
    admin.fill("#create-key input[name=owner]", "newco")
    with admin.expect_navigation():
        admin.click("#create-key button[type=submit]")
    secret = admin.locator("#new-key-secret").inner_text().strip()
    screenshot(admin, tmp_path, "keys-created")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert console.api.get("/v1/checks", headers=bearer).status_code == 200
    key_id = console.api.get("/v1/keys", headers=console.h("admin"), params={"owner": "newco"})
    made = key_id.json()[0]["key_id"]
    with admin.expect_navigation(url="**/console/keys?done=key_revoked"):
        admin.click(f"#keys tr[data-key='{made}'] button[type=submit]")
    assert console.api.get("/v1/checks", headers=bearer).status_code == 401
    admin.fill("#display-name input[name=owner]", "tsuburaya")
    admin.fill("#display-name input[name=display_name]", "圆谷制作")
    with admin.expect_navigation(url="**/console/keys?done=display_name"):
        admin.click("#display-name button[type=submit]")
    shown = console.api.get("/v1/owners/tsuburaya", headers=console.h("holder")).json()
    assert shown["display_name"] == "圆谷制作"
    screenshot(admin, tmp_path, "keys-display-name")
