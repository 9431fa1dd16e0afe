"""The console's acceptance flows in a real browser against a real `screener serve`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFilter

from screener.core.samples import drawing, scene
from tests.console.conftest import Console, SignIn, screenshot
from tests.service.conftest import encode

pytestmark = pytest.mark.slow


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")  # keeps an alpha channel
    return buffer.getvalue()


def copy_of(image: Image.Image) -> bytes:
    return encode(image.filter(ImageFilter.GaussianBlur(1)), "JPEG", quality=80)


def centre_crop(image: Image.Image, quality: int = 85) -> bytes:
    w, h = image.size
    return encode(image.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)), "JPEG", quality=quality)


def upload(name: str, data: bytes, media: str = "image/png") -> dict[str, Any]:
    return {"name": name, "mimeType": media, "buffer": data}


def register(console: Console, work_id: str, image: Image.Image, title: str) -> None:
    made = console.api.post(
        "/v1/works",
        headers=console.h("holder"),
        data={"work_id": work_id, "title": title},
        files=[("images", (f"{work_id}.png", encode(image), "image/png"))],
    )
    assert made.status_code == 201, made.text


def api_check(console: Console, data: bytes) -> dict[str, Any]:
    response = console.api.post(
        "/v1/check",
        headers=console.h("platform"),
        files=[("images", ("out.jpg", data, "image/jpeg"))],
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["results"][0]
    return result


def test_rights_holder_registers_a_work_with_two_images(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    page = sign_in("holder")
    assert page.url.endswith("/console/works")
    page.fill("input[name=work_id]", "medusa-1")
    page.fill("input[name=title]", "Medusa")
    page.fill("textarea[name=aliases]", "美杜莎\nメドゥーサ")
    page.set_input_files(
        "form[action$='/works'] input[type=file]",
        [
            upload("medusa-front.png", png(scene(7101))),
            upload("medusa-cutout.png", png(drawing(7102, transparent=True))),
        ],
    )
    assert page.locator("[data-chosen] li").count() == 2  # shown before sending
    with page.expect_navigation(url="**/console/works/medusa-1?done=created"):
        page.click("form[action$='/works'] button[type=submit]")
    assert page.locator("#references li").count() == 2
    for image in page.locator("#references img").all():
        assert image.evaluate("i => i.complete && i.naturalWidth > 0"), image
    page.goto(console.url + "/works")
    row = page.locator("#works tr", has_text="medusa-1")
    assert row.count() == 1
    assert "Medusa" in row.inner_text() and "美杜莎" in row.inner_text()
    assert row.locator("td").nth(3).inner_text() == "2"
    page.click("text=medusa-1")
    screenshot(page, tmp_path, "my-works-en")
    stored = console.api.get("/v1/works/medusa-1", headers=console.h("holder")).json()
    assert stored["reference_count"] == 2 and stored["aliases"] == ["美杜莎", "メドゥーサ"]


def test_platform_check_of_a_copy_shows_block_with_evidence_picture(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    original = scene(7201)
    register(console, "ultraman-1", original, "Ultraman")
    page = sign_in("platform")
    assert page.url.endswith("/console/try")
    page.set_input_files("input[name=image]", upload("output.jpg", copy_of(original), "image/jpeg"))
    page.fill("textarea[name=prompt]", "a giant silver hero")
    with page.expect_navigation(url="**/console/checks/chk_*"):
        page.click("form[action$='/try'] button[type=submit]")
    assert page.locator("[data-decision]").inner_text() == "block"
    assert "Ultraman" in page.locator("#risk-prompt").inner_text()
    picture = page.locator("#evidence-picture")
    picture.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const i = document.getElementById('evidence-picture');"
        " return i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    screenshot(page, tmp_path, "check-evidence-en")
    check_id = page.url.rsplit("/", 1)[-1]
    fetched = page.request.get(f"{console.url}/checks/{check_id}/evidence.png")
    assert fetched.status == 200 and fetched.headers["content-type"] == "image/png"


def test_operator_confirms_a_review_item_and_the_next_similar_check_is_caught(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    original = scene(7301)
    register(console, "reviewed-1", original, "Reviewed work")
    bands = console.api.put(
        "/v1/works/reviewed-1/thresholds",
        headers=console.h("operator"),
        json={"review": 0.5, "block": 1.0},  # 1.0: never block, so the crop is reviewed
    )
    assert bands.status_code == 200, bands.text
    held = api_check(console, centre_crop(original))
    assert held["decision"] == "review", held["fused_score"]
    before = held["verdict"]["matches"][0]["signals"]["pdq_hamming"]
    assert before is None or before > 32  # the crop is far from the reference for PDQ

    page = sign_in("operator")
    assert page.url.endswith("/console/review")
    item = page.locator("article.review")
    assert item.get_attribute("data-check") == held["check_id"]
    assert "Reviewed work" in item.inner_text()
    assert "sscd_cosine" in item.inner_text()
    assert page.locator("article.review .pair img").count() >= 2
    screenshot(page, tmp_path, "review-queue-en")
    page.keyboard.press("c")  # arms the confirm form: one key press decides nothing
    assert page.locator("form.armed[data-key='c']").count() == 1
    assert "again" in page.locator("#key-hint").inner_text()
    assert page.url.endswith("/console/review")
    with page.expect_navigation(url="**/console/review?done=confirmed"):
        page.keyboard.press("c")
    assert "Confirmed" in page.locator(".flash").inner_text()
    assert page.locator(f"article.review[data-check='{held['check_id']}']").count() == 0

    record = console.api.get(f"/v1/checks/{held['check_id']}", headers=console.h("operator"))
    assert record.json()["review_status"] == "confirmed"
    later = api_check(console, centre_crop(original, quality=70))
    assert later["decision"] == "review"  # the work's override never blocks
    assert later["verdict"]["top_work_id"] == "reviewed-1"
    # Caught by the confirmed output itself, now one of the work's references.
    assert later["verdict"]["matches"][0]["signals"]["pdq_hamming"] <= 16


def test_invalid_policy_is_refused_with_the_reason_and_the_old_one_stays(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    before = console.api.get("/v1/policy", headers=console.h("operator")).json()["version"]
    page = sign_in("operator")
    page.goto(console.url + "/policy")
    assert page.locator("#policy-version").inner_text() == before
    invalid = b"version: broken-1\nbias: -4\nsignals: {}\nbands: {review: 0.9, block: 0.2}\n"
    page.set_input_files("input[name=policy_file]", upload("broken.yaml", invalid, "text/yaml"))
    page.click("form[action$='/policy/preview'] button[type=submit]")
    error = page.locator("#form-error")
    error.wait_for(state="visible")
    assert "review <= block" in error.inner_text()
    assert page.url.endswith("/console/policy")  # the page (and the chosen file) stayed
    screenshot(page, tmp_path, "policy-refused")
    page.reload()
    assert page.locator("#policy-version").inner_text() == before
    after = console.api.get("/v1/policy", headers=console.h("operator")).json()["version"]
    assert after == before


def test_rights_holder_opening_another_owners_work_gets_the_404_page(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    register(console, "secret-work", scene(7401), "A secret title")
    page = sign_in("holder2")
    response = page.goto(console.url + "/works/secret-work")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert "A secret title" not in page.content()
    image = page.request.get(f"{console.url}/works/secret-work/references/1/image")
    assert image.status == 404
    screenshot(page, tmp_path, "not-found")
    mine = sign_in("holder")
    mine_response = mine.goto(console.url + "/works/secret-work")
    assert mine_response is not None and mine_response.status == 200


def test_a_form_post_without_the_csrf_token_is_refused(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    register(console, "csrf-work", scene(7501), "Kept title")
    page = sign_in("holder")
    page.goto(console.url + "/works/csrf-work")
    form = "form[action$='/csrf-work/edit']"
    page.locator(f"{form} input[name=csrf_token]").evaluate("i => i.remove()")
    page.fill(f"{form} input[name=title]", "Changed by a forged form")
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")
    assert page.locator("h1").inner_text() == "Form refused"
    assert "CSRF" in page.locator("#form-error").inner_text()
    screenshot(page, tmp_path, "csrf-refused")
    work = console.api.get("/v1/works/csrf-work", headers=console.h("holder")).json()
    assert work["title"] == "Kept title"
