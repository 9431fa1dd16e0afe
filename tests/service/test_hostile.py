"""Hostile input through the API, on SQLite and on a real PostgreSQL.

Every request here is wrong on purpose: damaged or oversized images, decompression bombs,
wrong content types, bodies over the limit (declared and streamed), malformed JSON,
unknown fields, huge strings, control characters and path tricks in ids. Each must be
refused with a 4xx whose body names the problem (``{"error": {"code", "message"},
"request_id"}``), never a 500; afterwards the service still screens (a copy of a
registered work is still blocked) and nothing stored is lost (the works as they were,
the audit chain intact with its old head in place).

The `api` fixture is the shared app with the default limits; `tight` is an app of its own
with small limits (request bytes, images per request, image bytes and pixels).
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image

from screener.core.samples import scene
from tests.service.conftest import Service, encode, files, running_service

pytestmark = pytest.mark.slow

BASE = "hostile-base"  # the work every app here holds before any hostile request
BASE_IMAGE = scene(9001, (160, 120))
BASE_PNG = encode(BASE_IMAGE)
BASE_COPY = encode(BASE_IMAGE, "JPEG", quality=85)
UNRELATED = encode(scene(9002, (160, 120)))

# The tight app's limits: small enough that a few small images go over each.
TIGHT = {
    "max_request_bytes": 300_000,
    "max_images": 2,
    "max_bytes": 80_000,
    "max_pixels": 250_000,
}


# helpers -------------------------------------------------------------------------------------


def refused(response: httpx.Response, status: int, code: str, *words: str) -> str:
    """Assert a clean refusal: the status, the error code, a message naming the problem
    (every word in ``words``), the request id, and nothing internal; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    error = body["error"]
    assert error["code"] == code, body
    message = error["message"]
    assert isinstance(message, str) and message.strip(), body
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    rid = response.headers.get("x-request-id")
    assert rid and body["request_id"] == rid, (body, response.headers)
    for leak in ("Traceback", "sqlalchemy", "psycopg", 'File "'):
        assert leak not in response.text, response.text
    return message


def on_postgres(service: Service) -> bool:
    return bool(service.app.state.settings.database_url)


def admin_get(service: Service, path: str, **params: Any) -> Any:
    response = service.client.get(path, headers=service.h("admin"), params=params)
    assert response.status_code == 200, response.text
    return response.json()


@dataclass(frozen=True)
class Stored:
    """What must survive a hostile request: every work, the base work's references, and
    the audit chain's head."""

    works: dict[str, dict[str, Any]]
    base_references: list[dict[str, Any]]
    head_seq: int
    head_hash: str


def stored(service: Service) -> Stored:
    page = admin_get(service, "/v1/works", limit=500)
    assert page["total"] <= 500, "too many works for this snapshot"
    verify = admin_get(service, "/v1/audit/verify")
    assert verify["ok"], verify
    return Stored(
        works={w["work_id"]: w for w in page["items"]},
        base_references=admin_get(service, f"/v1/works/{BASE}")["references"],
        head_seq=verify["head_seq"],
        head_hash=verify["head_hash"],
    )


def assert_still_screens(service: Service) -> None:
    """A copy of the base work is still blocked, naming it."""
    response = service.check("platform", ("copy.jpg", BASE_COPY, "image/jpeg"))
    assert response.status_code == 200, response.text
    (copy,) = response.json()["results"]
    assert copy["decision"] == "block", copy
    assert copy["verdict"]["top_work_id"] == BASE


@contextmanager
def unharmed(service: Service) -> Iterator[Service]:
    """Run the body, then check the service still screens and lost nothing it held."""
    before = stored(service)
    yield service
    assert_still_screens(service)
    after = stored(service)
    for work_id, work in before.works.items():
        assert after.works.get(work_id) == work, f"work {work_id!r} changed or vanished"
    assert after.base_references == before.base_references
    assert after.head_seq >= before.head_seq
    if before.head_seq:
        # The old head is still in the chain, unchanged (the chain only grows).
        record = admin_get(service, "/v1/audit", after=before.head_seq - 1, limit=1)[0]
        assert (record["seq"], record["hash"]) == (before.head_seq, before.head_hash)


def register_base(service: Service) -> None:
    made = service.register("holder", BASE, BASE_PNG, title="The base work")
    assert made.status_code == 201, made.text


@functools.cache
def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG declaring ``width`` x ``height`` pixels, all black: about 50 KB of
    file that would decode to 400 million pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def noisy_png(side: int) -> bytes:
    """A PNG that barely compresses: about 3 bytes per pixel."""
    return encode(Image.effect_noise((side, side), 120).convert("RGB").resize((side, side)))


def multipart_stream(boundary: str, total: int) -> Iterator[bytes]:
    """One multipart ``images`` part of ``total`` junk bytes, sent in chunks, with no
    Content-Length."""
    yield (
        f"--{boundary}\r\nContent-Disposition: form-data; name=images; filename=big.png\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    for _ in range(total // 10_000):
        yield b"\0" * 10_000
    yield f"\r\n--{boundary}--\r\n".encode()


# fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def based(service: Service) -> Service:
    register_base(service)
    return service


@pytest.fixture
def api(based: Service) -> Iterator[Service]:
    """The shared app (default limits), checked unharmed after the test."""
    with unharmed(based) as service:
        yield service


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tight_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp(f"tight-{request.param}")
    settings: dict[str, Any] = dict(TIGHT)
    if request.param == "postgresql":
        settings["database_url"] = request.getfixturevalue("postgres").create_database()
    with running_service(data_dir, **settings) as service:
        register_base(service)
        yield service


@pytest.fixture
def tight(tight_app: Service) -> Iterator[Service]:
    """An app with small limits (TIGHT), checked unharmed after the test."""
    with unharmed(tight_app) as service:
        yield service


# damaged and hostile images ------------------------------------------------------------------

JPEG = encode(scene(9003, (160, 120)), "JPEG", quality=90)
PNG = encode(scene(9003, (160, 120)))

BAD_IMAGES = {
    # name: (file name, bytes, media type, status, code, words in the message)
    "random bytes": ("x.png", bytes(range(256)) * 64, "image/png", 422, "corrupt_image", ()),
    "png signature then junk": (
        "x.png",
        b"\x89PNG\r\n\x1a\n" + b"\x13\x37" * 500,
        "image/png",
        422,
        "corrupt_image",
        (),
    ),
    "truncated png": ("t.png", PNG[: len(PNG) // 2], "image/png", 422, "corrupt_image", ("png",)),
    "truncated jpeg": (
        "t.jpg",
        JPEG[: len(JPEG) // 2],
        "image/jpeg",
        422,
        "corrupt_image",
        ("jpeg", "truncated"),
    ),
    "png header only": ("h.png", PNG[:33], "image/png", 422, "corrupt_image", ()),
    "empty file": ("e.png", b"", "image/png", 422, "empty_image", ("empty",)),
    "text as image": ("a.png", b"hello, world\n" * 20, "image/png", 415, "unsupported_format", ()),
    "html as image": (
        "a.jpg",
        b"<!doctype html><html><body><script>alert(1)</script></body></html>",
        "image/jpeg",
        415,
        "unsupported_format",
        (),
    ),
    "svg": (
        "a.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000"></svg>',
        "image/svg+xml",
        415,
        "unsupported_format",
        (),
    ),
    "pdf": (
        "a.pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "application/pdf",
        415,
        "unsupported_format",
        (),
    ),
    "decompression bomb": ("bomb.png", b"", "image/png", 413, "image_too_large", ("pixels",)),
}


def bad_image(name: str) -> tuple[tuple[str, bytes, str], int, str, tuple[str, ...]]:
    filename, data, media, status, code, words = BAD_IMAGES[name]
    if name == "decompression bomb":
        data = png_bomb()
    return (filename, data, media), status, code, words


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_image_is_refused_by_check(api: Service, name: str) -> None:
    part, status, code, words = bad_image(name)
    message = refused(api.check("platform", part), status, code, *words)
    assert part[0] in message  # the message names the file at fault


@pytest.mark.parametrize("name", BAD_IMAGES)
def test_bad_image_registers_nothing(api: Service, name: str) -> None:
    """A bad image among good ones fails the registration and stores none of them."""
    part, status, code, words = bad_image(name)
    work_id = f"hostile-{name.replace(' ', '-')}"
    response = api.client.post(
        "/v1/works",
        headers=api.h("holder"),
        data={"work_id": work_id},
        files=files(PNG, part),
    )
    refused(response, status, code, *words)
    refused(api.client.get(f"/v1/works/{work_id}", headers=api.h("holder")), 404, "not_found")


def test_bad_image_adds_no_reference(api: Service) -> None:
    part, status, code, _ = bad_image("truncated jpeg")
    response = api.client.post(
        f"/v1/works/{BASE}/references", headers=api.h("holder"), files=files(PNG, part)
    )
    refused(response, status, code)  # the guard checks BASE's references did not change


def test_one_bad_image_among_good_ones_is_reported_in_place(api: Service) -> None:
    part, _, code, _ = bad_image("decompression bomb")
    response = api.check("platform", ("copy.jpg", BASE_COPY, "image/jpeg"), part, UNRELATED)
    assert response.status_code == 200, response.text
    copy, bomb, other = response.json()["results"]
    assert copy["decision"] == "block" and other["decision"] == "allow"
    assert bomb["error"]["code"] == code and bomb["check_id"] is None
    assert bomb["filename"] == "bomb.png"


@pytest.mark.parametrize("path", ["/v1/label", "/v1/label/verify"])
def test_bad_image_is_refused_by_labels(api: Service, path: str) -> None:
    part, status, code, _ = bad_image("decompression bomb")
    data = {"provider": "genco", "content_id": "c1"} if path == "/v1/label" else {}
    response = api.client.post(path, headers=api.h("platform"), data=data, files={"image": part})
    refused(response, status, code)


def test_hostile_file_names_are_only_names(api: Service) -> None:
    """Path tricks, control characters and length in a file name are data, never a path."""
    names = ["../../../../etc/passwd", "..\\..\\boot.ini", "a\x01\x7fb.png", "n" * 1000]
    response = api.check("platform", *((name, UNRELATED, "image/png") for name in names))
    assert response.status_code == 200, response.text
    for result in response.json()["results"]:
        assert result["decision"] == "allow"
        assert len(result["filename"]) <= 200
    # A part header longer than the multipart parser takes is a bad request, not a crash.
    refused(api.check("platform", ("n" * 10_000, UNRELATED, "image/png")), 400, "bad_request")


# content types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["json body", "no body", "form without files", "files under another name", "raw bytes"],
)
def test_check_without_multipart_images_is_refused(api: Service, how: str) -> None:
    client, headers = api.client, api.h("platform")
    if how == "json body":
        response = client.post("/v1/check", headers=headers, json={"images": ["aGVsbG8="]})
    elif how == "no body":
        response = client.post("/v1/check", headers=headers)
    elif how == "form without files":
        response = client.post("/v1/check", headers=headers, data={"prompt": "a cat"})
    elif how == "files under another name":
        response = client.post(
            "/v1/check", headers=headers, files={"image": ("a.png", PNG, "image/png")}
        )
    else:
        response = client.post(
            "/v1/check", headers={**headers, "content-type": "image/png"}, content=PNG
        )
    refused(response, 422, "invalid_request", "images")


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=zzz", "multipart/mixed; boundary=x"],
)
def test_malformed_multipart_is_refused(api: Service, content_type: str) -> None:
    response = api.client.post(
        "/v1/check",
        headers={**api.h("platform"), "content-type": content_type},
        content=b"--nope\r\nContent-Disposition: form-data; name=images\r\n\r\n" + PNG[:100],
    )
    assert response.status_code in (400, 422), response.text
    refused(response, response.status_code, response.json()["error"]["code"])


def test_json_endpoint_refuses_a_form(api: Service) -> None:
    response = api.client.post(
        "/v1/keys", headers=api.h("admin"), data={"role": "platform", "owner": "evil"}
    )
    refused(response, 422, "invalid_request", "body")


# limits (the tight app) ----------------------------------------------------------------------


def test_image_over_max_bytes_is_refused(tight: Service) -> None:
    big = noisy_png(256)
    assert TIGHT["max_bytes"] < len(big) < TIGHT["max_request_bytes"]
    refused(tight.check("platform", big), 413, "image_too_large", "KiB", "limit")
    response = tight.register("holder", "hostile-big", big)
    refused(response, 413, "image_too_large")
    refused(tight.client.get("/v1/works/hostile-big", headers=tight.h("holder")), 404, "not_found")


def test_image_over_max_pixels_is_refused(tight: Service) -> None:
    wide = encode(Image.new("RGB", (600, 500), (200, 30, 30)))  # 300 000 pixels, a few KB
    assert len(wide) < TIGHT["max_bytes"]
    refused(tight.check("platform", wide), 413, "image_too_large", "pixels")


@pytest.mark.parametrize(
    ("who", "path", "data"),
    [
        ("platform", "/v1/check", {}),
        ("holder", "/v1/works", {"work_id": "hostile-many"}),
        ("holder", f"/v1/works/{BASE}/references", {}),
        ("holder", "/v1/notices", {"work_id": "hostile-many"}),
    ],
)
def test_too_many_images_are_refused(
    tight: Service, who: str, path: str, data: dict[str, str]
) -> None:
    limit = TIGHT["max_images"]
    many = files(*(encode(scene(9100 + i, (64, 48))) for i in range(limit + 1)))
    response = tight.client.post(path, headers=tight.h(who), data=data, files=many)
    refused(response, 413, "too_many_images", f"at most {limit}")
    refused(tight.client.get("/v1/works/hostile-many", headers=tight.h("holder")), 404, "not_found")


def test_body_over_the_limit_with_content_length_is_refused(tight: Service) -> None:
    size = TIGHT["max_request_bytes"] + 1
    response = tight.client.post("/v1/check", headers=tight.h("platform"), files=files(bytes(size)))
    refused(response, 413, "request_too_large", str(TIGHT["max_request_bytes"]))
    response = tight.client.post(
        "/v1/keys",
        headers=tight.h("admin"),
        json={"role": "platform", "owner": "evil", "description": "x" * size},
    )
    refused(response, 413, "request_too_large")


def test_streamed_body_over_the_limit_is_refused(tight: Service) -> None:
    """No Content-Length (chunked): the body is cut off as soon as it passes the limit."""
    boundary = "hostileboundary"
    response = tight.client.post(
        "/v1/check",
        headers={
            **tight.h("platform"),
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
        content=multipart_stream(boundary, 2 * TIGHT["max_request_bytes"]),
    )
    assert "content-length" not in response.request.headers
    refused(response, 413, "request_too_large", str(TIGHT["max_request_bytes"]))

    def json_stream() -> Iterator[bytes]:
        yield b'{"role": "platform", "owner": "'
        for _ in range(TIGHT["max_request_bytes"] // 10_000 + 1):
            yield b"x" * 10_000
        yield b'"}'

    response = tight.client.post(
        "/v1/keys",
        headers={**tight.h("admin"), "content-type": "application/json"},
        content=json_stream(),
    )
    refused(response, 413, "request_too_large")


def test_streamed_body_under_the_limit_is_served(tight: Service) -> None:
    boundary = "okboundary"

    def stream() -> Iterator[bytes]:
        yield (
            f"--{boundary}\r\nContent-Disposition: form-data; name=images; filename=c.jpg\r\n"
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        yield BASE_COPY
        yield f"\r\n--{boundary}--\r\n".encode()

    response = tight.client.post(
        "/v1/check",
        headers={
            **tight.h("platform"),
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
        content=stream(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["decision"] == "block"


def test_content_length_that_is_not_a_number_is_refused(tight: Service) -> None:
    request = tight.client.build_request(
        "POST", "/v1/keys", headers=tight.h("admin"), json={"role": "platform", "owner": "x"}
    )
    request.headers["content-length"] = "lots"
    refused(tight.client.send(request), 400, "bad_request", "content-length")


# JSON endpoints ------------------------------------------------------------------------------

MALFORMED_JSON = {
    "broken": b"{bad",
    "truncated": b'{"licensees": ["a", ',
    "empty object key": b'{"": 1',
    "trailing garbage": b'{"licensees": []} {"licensees": []}',
    "not utf-8": b'{"licensees": ["\xff\xfe"]}',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "single quotes": b"{'licensees': []}",
}


# (who, method, path) of every route that takes a JSON body.
JSON_ENDPOINTS = [
    ("holder", "PUT", f"/v1/works/{BASE}/licensees"),
    ("admin", "POST", "/v1/keys"),
    ("operator", "PUT", f"/v1/works/{BASE}/thresholds"),
    ("operator", "POST", "/v1/notices/n_missing/reject"),
    ("operator", "POST", "/v1/review/chk_missing/confirm"),
    ("operator", "POST", "/v1/review/chk_missing/reject"),
]
# Every kind of malformed JSON to the first two, the plainest kind to the others.
MALFORMED_CASES = [(*e, what) for e in JSON_ENDPOINTS[:2] for what in MALFORMED_JSON] + [
    (*e, "broken") for e in JSON_ENDPOINTS[2:]
]


@pytest.mark.parametrize(
    ("who", "method", "path", "what"),
    MALFORMED_CASES,
    ids=[f"{m} {p} {w}" for _, m, p, w in MALFORMED_CASES],
)
def test_malformed_json_is_refused(
    api: Service, who: str, method: str, path: str, what: str
) -> None:
    response = api.client.request(
        method,
        path,
        headers={**api.h(who), "content-type": "application/json"},
        content=MALFORMED_JSON[what],
    )
    assert response.status_code in (400, 422), response.text
    refused(response, response.status_code, response.json()["error"]["code"])


@pytest.mark.parametrize(
    "body",
    [None, [], "licensees", 7, {"licensees": "tsuburaya"}, {"licensees": [1, 2]}, {}],
    ids=["null", "list", "string", "number", "not a list", "not strings", "missing"],
)
def test_wrong_json_shapes_are_refused(api: Service, body: Any) -> None:
    response = api.client.put(f"/v1/works/{BASE}/licensees", headers=api.h("holder"), json=body)
    refused(response, 422, "invalid_request")


@pytest.mark.parametrize(
    ("who", "method", "path", "body", "unknown"),
    [
        ("holder", "PUT", f"/v1/works/{BASE}/licensees", {"licensees": [], "owner": "me"}, "owner"),
        ("operator", "PUT", f"/v1/works/{BASE}/thresholds", {"block": 0.9, "bypass": 1}, "bypass"),
        ("admin", "POST", "/v1/keys", {"role": "admin", "owner": "x", "secret": "s"}, "secret"),
        ("operator", "POST", "/v1/notices/n_x/reject", {"reason": "r", "force": True}, "force"),
        (
            "operator",
            "POST",
            "/v1/review/chk_x/reject",
            {"note": "", "decision": "allow"},
            "decision",
        ),
    ],
    ids=["licensees", "thresholds", "keys", "notice reject", "review reject"],
)
def test_unknown_fields_are_refused(
    api: Service, who: str, method: str, path: str, body: dict[str, Any], unknown: str
) -> None:
    response = api.client.request(method, path, headers=api.h(who), json=body)
    refused(response, 422, "invalid_request", unknown, "not permitted")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "0", "1.5"])
def test_thresholds_out_of_range_are_refused(api: Service, value: str) -> None:
    response = api.client.put(
        f"/v1/works/{BASE}/thresholds",
        headers={**api.h("operator"), "content-type": "application/json"},
        content=f'{{"review": {value}}}'.encode(),
    )
    refused(response, 422, "invalid_request", "review")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"review": 0.9, "block": 0.5}', "invalid_request"),
        ('{"block": 5e-324}', "invalid_thresholds"),
        ('{"review": 0.99, "block": 0.98}', "invalid_request"),
        ('{"block": 0.01}', "invalid_thresholds"),
    ],
)
def test_inverted_thresholds_are_refused(api: Service, body: str, code: str) -> None:
    """Bands upside down, given both or one against the policy's other: a 422 that says
    review must not be above block, and the work keeps its bands."""
    url = f"/v1/works/{BASE}/thresholds"
    before = api.client.get(f"/v1/works/{BASE}", headers=api.h("operator")).json()["thresholds"]
    response = api.client.put(
        url, headers={**api.h("operator"), "content-type": "application/json"}, content=body
    )
    refused(response, 422, code, "review", "block")
    after = api.client.get(f"/v1/works/{BASE}", headers=api.h("operator")).json()["thresholds"]
    assert after == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", f"/v1/works/{BASE}/licensees", '{"licensees": ["\\ud800"]}'),
        ("POST", "/v1/keys", '{"role": "platform", "owner": "\\udfff"}'),
    ],
)
def test_lone_surrogates_are_refused(api: Service, method: str, path: str, body: str) -> None:
    """JSON may escape half a UTF-16 pair; no database can store it."""
    response = api.client.request(
        method, path, headers={**api.h("admin"), "content-type": "application/json"}, content=body
    )
    refused(response, 422, "invalid_request", "unicode")


def test_unknown_role_is_refused(api: Service) -> None:
    response = api.client.post(
        "/v1/keys", headers=api.h("admin"), json={"role": "superuser", "owner": "evil"}
    )
    refused(response, 422, "bad_input", "role")


# huge strings --------------------------------------------------------------------------------

HUGE = "x" * 100_000


@pytest.mark.parametrize(
    "field", ["work_id", "title", "aliases", "owner"], ids=lambda f: f"register {f}"
)
def test_huge_strings_in_a_registration_are_refused(api: Service, field: str) -> None:
    form: dict[str, Any] = {"work_id": "hostile-huge", field: HUGE}
    if field == "aliases":
        form["aliases"] = [HUGE]
    response = api.client.post("/v1/works", headers=api.h("admin"), data=form, files=files(PNG))
    assert 400 <= response.status_code < 500, response.text
    refused(response, 422, response.json()["error"]["code"])
    refused(api.client.get("/v1/works/hostile-huge", headers=api.h("admin")), 404, "not_found")


@pytest.mark.parametrize(
    ("who", "method", "path", "kwargs"),
    [
        ("platform", "POST", "/v1/check", {"data": {"prompt": HUGE}, "files": files(UNRELATED)}),
        ("platform", "POST", "/v1/check", {"data": {"user_ref": HUGE}, "files": files(UNRELATED)}),
        ("holder", "PUT", f"/v1/works/{BASE}/licensees", {"json": {"licensees": [HUGE]}}),
        ("holder", "PUT", f"/v1/works/{BASE}/licensees", {"json": {"licensees": ["a"] * 5000}}),
        ("admin", "POST", "/v1/keys", {"json": {"role": "platform", "owner": HUGE}}),
        ("admin", "POST", "/v1/keys", {"json": {"role": HUGE, "owner": "x"}}),
        (
            "admin",
            "POST",
            "/v1/keys",
            {"json": {"role": "platform", "owner": "x", "description": HUGE}},
        ),
        ("admin", "GET", "/v1/keys", {"params": {"owner": HUGE[:20_000]}}),
        ("holder", "POST", "/v1/notices", {"data": {"work_id": BASE, "description": HUGE}}),
        ("holder", "POST", "/v1/notices", {"data": {"work_id": BASE, "check_ids": [HUGE]}}),
        ("operator", "POST", "/v1/review/chk_x/reject", {"json": {"note": HUGE}}),
        ("operator", "POST", "/v1/notices/n_x/reject", {"json": {"reason": HUGE}}),
        (
            "platform",
            "POST",
            "/v1/label",
            {"data": {"provider": HUGE, "content_id": "c"}, "files": {"image": ("a.png", PNG)}},
        ),
    ],
    ids=[
        "check prompt",
        "check user_ref",
        "licensee",
        "5000 licensees",
        "key owner",
        "key role",
        "key description",
        "keys owner filter",
        "notice description",
        "notice check id",
        "review note",
        "notice reject reason",
        "label provider",
    ],
)
def test_huge_strings_are_refused(
    api: Service, who: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = api.client.request(method, path, headers=api.h(who), **kwargs)
    assert response.status_code == 422, response.text
    refused(response, 422, response.json()["error"]["code"])


def test_huge_api_key_is_unauthorised(api: Service) -> None:
    response = api.client.get("/v1/works", headers={"Authorization": "Bearer " + "k" * 100_000})
    refused(response, 401, "unauthorized")
    response = api.client.get("/v1/works", headers={"X-API-Key": "sk_" + "\x7f" * 50})
    refused(response, 401, "unauthorized")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/works", {"offset": 10**30}),
        ("/v1/works", {"limit": 0}),
        ("/v1/works", {"limit": "many"}),
        ("/v1/checks", {"decision": "allow' OR 1=1 --"}),
        ("/v1/notices", {"status": "*"}),
        ("/v1/review", {"status": "pending\x00"}),
        ("/v1/audit", {"after": 2**64}),
        ("/v1/audit", {"after": -1}),
        ("/v1/audit", {"limit": 10**6}),
    ],
)
def test_bad_query_parameters_are_refused(api: Service, path: str, params: dict[str, Any]) -> None:
    refused(api.client.get(path, headers=api.h("admin"), params=params), 422, "invalid_request")


@pytest.mark.parametrize("reference_id", ["0", "-1", "2147483648", "99999999999999999999999", "x"])
def test_bad_reference_ids_are_refused(api: Service, reference_id: str) -> None:
    response = api.client.delete(
        f"/v1/works/{BASE}/references/{reference_id}", headers=api.h("holder")
    )
    refused(response, 422, "invalid_request", "reference_id")


# work ids: control characters and path tricks ------------------------------------------------

BAD_WORK_IDS = {
    "nul": "a\x00b",
    "control": "a\x01b",
    "newline": "a\nb",
    "delete": "a\x7fb",
    "escape": "\x1b[31mred",
    "parent": "../x",
    "deep parent": "../../../../etc/passwd",
    "absolute": "/etc/passwd",
    "windows parent": "..\\x",
    "slash": "a/b",
    "blank": "   ",
    "dot": ".",
    "dots": "..",
}


@pytest.mark.parametrize("name", BAD_WORK_IDS)
def test_bad_work_ids_are_refused_at_registration(api: Service, name: str) -> None:
    work_id = BAD_WORK_IDS[name]
    refused(api.register("holder", work_id, PNG), 422, "bad_input", "work id")
    response = api.client.post(
        "/v1/notices", headers=api.h("holder"), data={"work_id": work_id}, files=files(PNG)
    )
    refused(response, 422, "bad_input", "work id")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/works/..%2Fx",
        "/v1/works/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/v1/works/..%5Cx",
        "/v1/works/a%01b",
        "/v1/works/%1B%5B31m",
        "/v1/works/%E2%80%AEevil",
        "/v1/works/" + "w" * 5000,
    ],
)
def test_tricky_work_paths_are_not_found(api: Service, path: str) -> None:
    for who in ("holder", "admin"):
        refused(api.client.get(path, headers=api.h(who)), 404, "not_found")
    refused(api.client.delete(path, headers=api.h("admin")), 404, "not_found")
    response = api.client.post(path + "/references", headers=api.h("admin"), files=files(PNG))
    refused(response, 404, "not_found")


def test_dot_segments_never_reach_another_route(api: Service) -> None:
    """``/v1/works/../keys`` is normalised by the client to ``/v1/keys``; whatever a client
    sends, a holder's key reaches no admin route by it."""
    for path in ("/v1/works/../keys", "/v1/works/%2E%2E/keys", "/v1/works/..%2Fkeys"):
        response = api.client.get(path, headers=api.h("holder"))
        assert response.status_code in (403, 404), (path, response.text)
        refused(response, response.status_code, response.json()["error"]["code"])


NUL_REQUESTS = [
    ("holder", "GET", "/v1/works/a%00b", {}),
    ("admin", "DELETE", "/v1/works/a%00b", {}),
    ("admin", "POST", "/v1/works/a%00b/references", {"files": files(PNG)}),
    ("operator", "PUT", "/v1/works/a%00b/licensees", {"json": {"licensees": []}}),
    ("admin", "GET", "/v1/checks/chk%00x", {}),
    ("admin", "GET", "/v1/checks/chk%00x/evidence", {}),
    ("admin", "GET", "/v1/notices/n%00x", {}),
    ("operator", "POST", "/v1/notices/n%00x/reject", {"json": {"reason": "no"}}),
    ("operator", "POST", "/v1/review/chk%00x/reject", {"json": {"note": ""}}),
    ("admin", "DELETE", "/v1/keys/k%00x", {}),
]


@pytest.mark.parametrize(
    ("who", "method", "path", "kwargs"),
    NUL_REQUESTS,
    ids=[f"{m} {p}" for _, m, p, _ in NUL_REQUESTS],
)
def test_nul_in_ids_is_not_found_on_every_database(
    api: Service,
    who: str,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    """An id with a NUL byte names nothing: 404, like any unknown id (PostgreSQL refuses
    NUL in text parameters, so the desk validates ids before looking)."""
    response = api.client.request(method, path, headers=api.h(who), **kwargs)
    refused(response, 404, "not_found")


def test_nul_in_a_notice_work_id_is_refused(api: Service) -> None:
    response = api.client.post(
        "/v1/notices", headers=api.h("holder"), data={"work_id": "a\x00b"}, files=files(PNG)
    )
    refused(response, 422, "bad_input", "work id")


def test_nul_in_a_filter_finds_nothing(api: Service) -> None:
    response = api.client.get("/v1/keys", headers=api.h("admin"), params={"owner": "a\x00b"})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json() == []


@pytest.mark.parametrize("owner", ["a\x00b", "a\x01b"], ids=["nul", "control"])
def test_control_characters_in_a_registration_owner_are_refused(api: Service, owner: str) -> None:
    response = api.register("admin", "hostile-owner", PNG, owner=owner)
    refused(response, 422, "bad_input", "owner")


# request ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given", ["../../etc/passwd", "x" * 65, "a b", "<script>", "id;rm -rf /", ""]
)
def test_hostile_request_ids_are_replaced(api: Service, given: str) -> None:
    response = api.client.get("/v1/works/none", headers={**api.h("holder"), "X-Request-ID": given})
    rid = response.headers["x-request-id"]
    assert rid != given and len(rid) == 32 and rid.isalnum()
    assert response.json()["request_id"] == rid


def test_a_good_request_id_is_kept(api: Service) -> None:
    response = api.client.get(
        "/v1/works/none", headers={**api.h("holder"), "X-Request-ID": "trace-42.a_b"}
    )
    assert response.headers["x-request-id"] == "trace-42.a_b"
    refused(response, 404, "not_found")


@pytest.mark.parametrize(
    ("who", "method", "path", "kwargs"),
    [
        ("admin", "POST", "/v1/keys", {"json": {"role": HUGE, "owner": "x"}}),
        ("holder", "GET", "/v1/works/" + "w" * 20_000, {}),
        ("admin", "GET", "/v1/checks/" + "c" * 20_000, {}),
    ],
    ids=["key role", "work id", "check id"],
)
def test_error_messages_stay_short_whatever_the_input(
    api: Service, who: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = api.client.request(method, path, headers=api.h(who), **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert len(response.json()["error"]["message"]) <= 1000
