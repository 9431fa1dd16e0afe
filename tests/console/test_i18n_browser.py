"""In a real browser against a real `screener serve`: the console in Chinese (and the
README's screenshots, taken in zh-CN), accessibility checked by axe-core on the main pages
in both languages, a narrow phone screen, the upload limit, and the API docs rendering
and uploading with every host but this one blocked.

axe-core 4.14.1 (npm registry, MPL-2.0) is vendored unchanged as vendor/axe.min.js: the
check then runs offline and always with the same rules; the console's CSP allows no
injected script, so the contexts that run it bypass CSP (nothing else differs).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageFilter

from screener.core.samples import drawing, scene
from tests.console.conftest import VIEWPORT, Console, SignIn, screenshot
from tests.service.conftest import encode

pytestmark = pytest.mark.slow

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PHONE = {"width": 390, "height": 844}


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload(name: str, data: bytes, media: str = "image/png") -> dict[str, Any]:
    return {"name": name, "mimeType": media, "buffer": data}


def register(console: Console, work_id: str, image: Image.Image, title: str) -> None:
    made = console.api.post(
        "/v1/works",
        headers=console.h("holder"),
        data={"work_id": work_id, "title": title, "aliases": ["Ultraman"]},
        files=[("images", (f"{work_id}.png", encode(image), "image/png"))],
    )
    assert made.status_code == 201, made.text


def api_check(console: Console, data: bytes) -> dict[str, Any]:
    response = console.api.post(
        "/v1/check",
        headers=console.h("platform"),
        files=[("images", ("out.jpg", data, "image/jpeg"))],
        data={"prompt": "画一个银色巨人"},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["results"][0]
    return result


def centre_crop(image: Image.Image) -> bytes:
    w, h = image.size
    return encode(image.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4)), "JPEG", quality=85)


@pytest.fixture(scope="module")
def seeded(console: Console) -> dict[str, str]:
    """A work with a Chinese title, a blocked check and a check waiting for review."""
    original = scene(8101)
    register(console, "aoteman", original, "奥特曼")
    blocked = api_check(console, encode(original.filter(ImageFilter.GaussianBlur(1)), "JPEG"))
    assert blocked["decision"] == "block", blocked["fused_score"]
    reviewed = scene(8102)
    register(console, "guanghe", reviewed, "光之巨人")
    bands = console.api.put(
        "/v1/works/guanghe/thresholds",
        headers=console.h("operator"),
        json={"review": 0.5, "block": 1.0},
    )
    assert bands.status_code == 200, bands.text
    held = api_check(console, centre_crop(reviewed))
    assert held["decision"] == "review", held["fused_score"]
    return {"blocked": blocked["check_id"], "review": held["check_id"]}


def offline(context: Any, console: Console) -> list[str]:
    """Abort every request to a host other than the server's; the list fills with them."""
    host = urlsplit(console.server.url).hostname
    blocked: list[str] = []

    def handle(route: Any) -> None:
        if urlsplit(route.request.url).hostname == host:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", handle)
    return blocked


# zh-CN -------------------------------------------------------------------------------------


def test_a_chinese_reviewer_gets_the_console_in_chinese(
    console: Console, sign_in: SignIn, seeded: dict[str, str], tmp_path: Path
) -> None:
    page = sign_in("operator", locale="zh-CN")
    assert page.url.endswith("/console/review")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text().startswith("审核队列")
    assert page.locator("nav a[aria-current=page]").inner_text() == "人工审核"
    item = page.locator("article.review")
    assert item.get_attribute("data-check") == seeded["review"]
    assert page.locator("article.review h2 bdi[lang=zh]").first.inner_text() == "光之巨人"
    assert "确认侵权" in page.locator("button.confirm").inner_text()
    # Fonts: the CJK stack is what the page asks for.
    family = page.evaluate("getComputedStyle(document.body).fontFamily")
    for face in ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC"):
        assert face in family, family
    screenshot(page, tmp_path, "review-queue", docs=True)
    # One key press arms, Esc disarms, two presses decide.
    page.keyboard.press("c")
    assert page.locator("form.armed").count() == 1
    assert "再按一次 c 确认" in page.locator("#key-hint").inner_text()
    page.keyboard.press("Escape")
    assert page.locator("form.armed").count() == 0
    page.keyboard.press("c")
    with page.expect_navigation(url="**/console/review?done=confirmed"):
        page.keyboard.press("c")
    assert page.locator(".flash").inner_text() == "已确认：该生成内容已加入作品的参考图。"
    # The switch to English sticks for the session's pages.
    page.click("a.lang-switch")
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(console.url + "/checks")
    assert page.locator("h1").inner_text() == "Checks"
    record = console.api.get(f"/v1/checks/{seeded['review']}", headers=console.h("operator"))
    assert record.json()["review_status"] == "confirmed"


def test_a_rights_holder_and_a_platform_in_chinese(
    console: Console, sign_in: SignIn, seeded: dict[str, str], tmp_path: Path
) -> None:
    holder = sign_in("holder", locale="zh-CN")
    holder.fill("input[name=work_id]", "meidusha")
    holder.fill("input[name=title]", "美杜莎")
    holder.set_input_files(
        "form[action$='/works'] input[type=file]",
        [
            upload("front.png", png(scene(8201))),
            upload("cutout.png", png(drawing(8202, transparent=True))),
        ],
    )
    with holder.expect_navigation(url="**/console/works/meidusha?done=created"):
        holder.click("form[action$='/works'] button[type=submit]")
    assert holder.locator(".flash").inner_text() == "作品已登记。"
    assert holder.locator("h1 bdi").get_attribute("lang") == "zh"
    screenshot(holder, tmp_path, "my-works", docs=True)

    platform = sign_in("platform", locale="zh-CN")
    platform.goto(f"{console.url}/checks/{seeded['blocked']}")
    assert platform.locator("[data-decision]").inner_text() == "拦截"
    assert platform.locator("[data-decision]").get_attribute("data-decision") == "block"
    assert platform.locator("#risk-prompt h2").inner_text() == "终端用户看到的提示"
    assert platform.locator("#risk-prompt p[lang=zh-CN]").count() == 1
    platform.wait_for_function(
        "() => { const i = document.getElementById('evidence-picture');"
        " return i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    screenshot(platform, tmp_path, "check-evidence", docs=True)


# accessibility -----------------------------------------------------------------------------


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
          }));
        }"""
    )
    return found


@pytest.mark.parametrize("locale", ["zh-CN", "en-GB"])
def test_the_main_pages_have_no_serious_accessibility_violations(
    console: Console, browser: Any, sign_in: SignIn, seeded: dict[str, str], locale: str
) -> None:
    work = "aoteman"
    pages = {
        "operator": [
            "/dashboard",
            "/works",
            f"/works/{work}",
            "/checks",
            f"/checks/{seeded['blocked']}",
            "/review",
            "/notices",
            "/appeals",
        ],
        "admin": ["/keys"],
        "platform": ["/try", "/takedown", f"/checks/{seeded['blocked']}", "/appeals"],
        "holder": ["/works", "/notices", "/held"],
    }
    problems: dict[str, list[dict[str, Any]]] = {}
    anonymous = browser.new_context(viewport=VIEWPORT, locale=locale, bypass_csp=True)
    try:
        page = anonymous.new_page()
        page.goto(console.url + "/login")
        problems["login"] = _axe(page)
    finally:
        anonymous.close()
    checked = 1
    for who, paths in pages.items():
        page = sign_in(who, locale=locale, bypass_csp=True)
        for path in paths:
            response = page.goto(console.url + path)
            assert response is not None and response.status == 200, (who, path)
            expected = "zh-CN" if locale == "zh-CN" else "en"
            assert page.locator("html").get_attribute("lang") == expected
            problems[f"{who} {path}"] = _axe(page)
            checked += 1
    assert checked == 17
    serious = {
        where: [v for v in found if v["impact"] in ("serious", "critical")]
        for where, found in problems.items()
    }
    assert not any(serious.values()), {w: v for w, v in serious.items() if v}


def test_a_phone_screen_wraps_the_header_and_scrolls_tables_in_place(
    console: Console, sign_in: SignIn, seeded: dict[str, str], tmp_path: Path
) -> None:
    page = sign_in("operator", locale="zh-CN", viewport=PHONE)
    for path in ("/checks", "/works", f"/checks/{seeded['blocked']}", "/review"):
        page.goto(console.url + path)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, overflow)
        outside = page.evaluate(
            """() => [...document.querySelectorAll("header.top a, header.top button")]
                 .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                 .map(e => e.textContent.trim())"""
        )
        assert outside == [], (path, outside)
    page.goto(console.url + "/checks")
    table = page.locator("table.list")
    assert table.evaluate("t => t.parentElement.classList.contains('scroll')")
    assert page.locator("header.top").evaluate("h => h.getBoundingClientRect().height") > 60
    screenshot(page, tmp_path, "phone-checks")


def test_an_upload_over_the_limit_says_the_limit(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    page = sign_in("platform", locale="zh-CN")
    limit = int(page.locator("body").get_attribute("data-max-upload") or 0)
    assert limit > 0
    big = tmp_path / "huge.png"
    with big.open("wb") as handle:  # sparse: takes no disk space
        handle.truncate(limit + 1)
    page.set_input_files("input[name=image]", str(big))
    page.click("form[action$='/try'] button[type=submit]")
    error = page.locator("#form-error")
    error.wait_for(state="visible")
    mib = f"{limit / 1024 / 1024:.1f} MiB"
    assert error.inner_text().startswith(f"文件过大：单次上传最多 {mib}"), error.inner_text()
    assert page.url.endswith("/console/try")
    screenshot(page, tmp_path, "upload-too-large")


def test_a_missing_page_keeps_the_navigation(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    page = sign_in("holder", locale="zh-CN")
    response = page.goto(console.url + "/works/nobody-has-this")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "未找到"
    assert page.locator("nav a").count() >= 4
    assert page.locator("button", has_text="退出登录").count() == 1
    response = page.goto(console.url + "/review")
    assert response is not None and response.status == 403
    assert page.locator("h1").inner_text() == "无权访问"
    assert page.locator("nav a", has_text="我的作品").count() == 1
    screenshot(page, tmp_path, "forbidden-with-navigation")


# API docs ----------------------------------------------------------------------------------


def test_the_api_docs_render_with_every_other_host_blocked(
    console: Console, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    blocked = offline(context, console)
    try:
        page = context.new_page()
        page.goto(console.server.url + "/docs")
        page.locator("#operations-checks-check_v1_check_post").wait_for(timeout=30_000)
        assert page.locator(".opblock").count() >= 40
        operation = page.locator("#operations-checks-check_v1_check_post")
        operation.locator(".opblock-summary").click()
        described = operation.locator(".opblock-description-wrapper").first
        described.wait_for()
        assert "Who may call: platforms and operators" in described.inner_text()
        screenshot(page, tmp_path, "swagger-offline")
        page.goto(console.server.url + "/redoc")
        page.locator("h2", has_text="Screen generated images before release").first.wait_for(
            timeout=30_000
        )
        assert page.get_by_text("Who may call:").count() >= 40
        screenshot(page, tmp_path, "redoc-offline")
        assert blocked == []
    finally:
        context.close()


def test_an_image_uploaded_from_the_docs_page_is_checked(
    console: Console, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    blocked = offline(context, console)
    try:
        page = context.new_page()
        page.goto(console.server.url + "/docs")
        page.locator("button.authorize").first.click()
        dialog = page.locator(".modal-ux")
        dialog.locator(".auth-container").first.locator("input").fill(console.keys["platform"])
        dialog.locator(".auth-container").first.locator("button.authorize").click()
        dialog.locator("button.btn-done").first.click()
        operation = page.locator("#operations-checks-check_v1_check_post")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        files = operation.locator("input[type=file]")
        if files.count() == 0:
            operation.get_by_role("button", name=re.compile("Add .*item")).first.click()
        files.first.set_input_files(upload("from-docs.png", png(scene(8301))))
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status")
        status.first.wait_for(timeout=60_000)
        assert status.first.inner_text().strip().startswith("200"), status.first.inner_text()
        body = operation.locator(".live-responses-table tbody .response-col_description").first
        found = re.search(r'"check_id": "([^"]+)"', body.inner_text())
        assert found is not None, body.inner_text()
        screenshot(page, tmp_path, "swagger-upload")
        assert blocked == []
    finally:
        context.close()
    record = console.api.get(f"/v1/checks/{found.group(1)}", headers=console.h("platform"))
    assert record.status_code == 200 and record.json()["platform"] == "genco"
