"""`screener works import` with an image that cannot be a work among good ones."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from screener.core import samples
from tests.cli.runner import run_cli

pytestmark = pytest.mark.slow


def test_a_flat_image_is_skipped_and_the_rest_of_its_work_registered(tmp_path: Path) -> None:
    works = tmp_path / "works"
    (works / "hero").mkdir(parents=True)
    (works / "villain").mkdir()
    samples.scene(21).save(works / "hero" / "a.png")
    samples.scene(22).save(works / "hero" / "b.png")
    Image.new("RGB", (512, 512), (20, 60, 200)).save(works / "hero" / "flat.png")
    samples.scene(23).save(works / "villain" / "a.png")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(tmp_path / "d", *args)

    imported = run("works", "import", str(works))
    assert imported.returncode == 1  # something was skipped: said, and the exit code shows it
    said = " ".join(imported.stderr.split())
    assert "skipped" in said and "flat.png" in said and "registration.min_contrast" in said
    lines = run("works", "list", "--json").stdout.splitlines()
    counts = {work["id"]: work["references"] for work in map(json.loads, lines)}
    assert counts == {"hero": 2, "villain": 1}
