"""Filing, answering and deciding an appeal in a real browser against `screener serve`."""

from __future__ import annotations

from pathlib import Path

import pytest

from screener.core.samples import scene
from tests.console.conftest import Console, SignIn, screenshot
from tests.console.test_browser import api_check, copy_of, register

pytestmark = pytest.mark.slow


def test_an_appeal_is_filed_answered_and_overturned(
    console: Console, sign_in: SignIn, tmp_path: Path
) -> None:
    original = scene(2901)
    register(console, "appealed-hero", original, "Appealed hero")
    held = api_check(console, copy_of(original))
    assert held["decision"] == "block"

    page = sign_in("platform")
    page.goto(console.url + "/appeals")
    page.fill("input[name=check_id]", held["check_id"])
    page.fill("textarea[name=statement]", "My own drawing, from my sketchbook")
    with page.expect_navigation():
        page.click("form[action$='/appeals'] button[type=submit]")
    article = page.locator("article.appeal")
    assert article.count() == 1
    assert article.get_attribute("data-status") == "open"
    appeal_id = article.get_attribute("data-appeal")
    screenshot(page, tmp_path, "appeal-filed")

    holder = sign_in("holder")
    holder.goto(console.url + "/appeals")
    holder.fill(f"article[data-appeal='{appeal_id}'] textarea[name=text]", "It is our hero")
    with holder.expect_navigation():
        holder.click(f"article[data-appeal='{appeal_id}'] form.respond button")
    assert "It is our hero" in holder.locator(f"article[data-appeal='{appeal_id}']").inner_text()

    operator = sign_in("operator")
    operator.goto(console.url + "/appeals?status=open")
    item = operator.locator(f"article[data-appeal='{appeal_id}']")
    assert "It is our hero" in item.inner_text()
    item.locator("input[name=reason]").fill("an original drawing, not the hero")
    with operator.expect_navigation():
        item.locator("select[name=outcome]").select_option("overturned")
        item.locator("form.decide button[type=submit]").click()
    decided = operator.locator(f"article[data-appeal='{appeal_id}']")
    assert decided.get_attribute("data-status") == "overturned"
    assert "output released" in decided.inner_text()
    screenshot(operator, tmp_path, "appeal-overturned", docs=True)

    check = console.api.get(f"/v1/checks/{held['check_id']}", headers=console.h("platform"))
    assert check.json()["review_status"] == "rejected"
    page.reload()
    assert page.locator("article.appeal").get_attribute("data-status") == "overturned"
