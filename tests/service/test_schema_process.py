"""The schemathesis command line against a real `screener serve` (uvicorn on loopback), once
with each role's key: admin, operator, rights holder and platform.

Every check runs but one: ``positive_data_acceptance`` expects every request the schema
allows to succeed, and some cannot, for reasons no schema states: the key's role (403), an
id that names nothing (404), review above block across two fields or against the policy
(422), bytes that are not an image (415, 422). Everything else must hold: no server error,
every status, content type, header and body as documented, ``Allow`` on a 405, bad data
refused (with 413 among the refusals: too many images), no object used after it was
deleted.

``SCREENER_FUZZ_EXAMPLES`` sets the examples per operation (default 5, to keep CI short;
the acceptance run used 100).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.test_process import Server, make_keys

pytestmark = pytest.mark.slow

PEOPLE = {
    "admin": ("admin", "ops"),
    "operator": ("operator", "ops"),
    "holder": ("rights_holder", "tsuburaya"),
    "platform": ("platform", "genco"),
}
EXAMPLES = os.environ.get("SCREENER_FUZZ_EXAMPLES", "5")
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Invalid data may also be refused as too large: more images than a request may carry.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"]
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    keys = make_keys(data_dir, PEOPLE)
    server = Server(data_dir, data_dir.parent / "serve.log")
    try:
        server.start()
        yield server, keys
    finally:
        server.kill()


@pytest.mark.parametrize("who", list(PEOPLE))
def test_schemathesis_finds_nothing(
    served: tuple[Server, dict[str, str]], who: str, tmp_path: Path
) -> None:
    server, keys = served
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "17",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
            "--exclude-path",
            "/metrics",  # Prometheus text, not described by the schema
            # Both headers: the app reads X-API-Key first, and schemathesis fills in both.
            "--header",
            f"Authorization: Bearer {keys[who]}",
            "--header",
            f"X-API-Key: {keys[who]}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    errors = [line for line in server.lines() if '"level": "error"' in line.lower()]
    assert not errors, "\n".join(errors[:5])
