"""The desk without HTTP: what survives a crash between recording and acting."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from screener import Screener, Settings
from screener.core.samples import scene
from screener.duties.desk import Desk, Upload
from screener.store.check_records import NoticeRow

pytestmark = pytest.mark.slow


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    scene(seed).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_notice_left_received_is_acted_on_at_the_next_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, signals=["phash", "pdq"])
    with Screener(settings) as screener:
        desk = Desk(screener)
        holder = desk.keys.create("rights_holder", "studio")[0]
        platform = desk.keys.create("platform", "genco")[0]
        released = desk.check(platform, [Upload(png(5), "out.png")])[0]
        assert not isinstance(released, Exception)
        assert released.verdict.decision == "allow"
        filed = desk.file_notice(holder, "hero", uploads=[Upload(png(5), "hero.png")])
        assert filed.status == "measures_taken"
        # Undo the measures as a crash before them would have left things: the notice
        # recorded with its images, the work not yet registered, nothing re-screened.
        screener.registry.remove("hero")
        with Session(screener.catalog.engine) as session, session.begin():
            session.execute(
                update(NoticeRow)
                .where(NoticeRow.id == filed.id)
                .values(status="received", measures=None, history=filed.history[:1])
            )

    with Screener(settings) as screener:
        desk = Desk(screener)
        resumed = desk.resume_notices()
        assert [n.id for n in resumed] == [filed.id]
        assert resumed[0].status == "measures_taken"
        assert resumed[0].measures is not None
        assert resumed[0].measures["references_added"]
        assert screener.catalog.get_work("hero").reference_count == 1
        assert desk.resume_notices() == []
        assert desk.audit.verify().ok
