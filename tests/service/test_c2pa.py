"""C2PA content credentials through POST /v1/label and /v1/label/verify, signed with a
chain the test makes: labelled JPEG and PNG verify (and are trusted against the test
root), pixels changed after signing and a stripped manifest are reported as such, and the
GB 45438 label still reads back beside the credentials."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from screener.core.samples import scene
from screener.labels.credentials import CHECK_ASSERTION, TRAINED_ALGORITHMIC_MEDIA
from tests.c2pa_certs import make_chain
from tests.service.conftest import Service, encode, running_service

pytestmark = pytest.mark.slow

MEDIA = {"JPEG": "image/jpeg", "PNG": "image/png"}


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("c2pa")
    chain = make_chain(folder)
    with running_service(
        folder / "data", c2pa_cert=chain.cert, c2pa_key=chain.key, c2pa_trust_anchors=chain.root
    ) as service:
        yield service


def label(service: Service, data: bytes, fmt: str, **form: Any) -> Any:
    return service.client.post(
        "/v1/label",
        headers=service.h("platform"),
        data={"provider": "genco", "content_id": "out-1", "c2pa": "true", **form},
        files={"image": (f"out.{fmt.lower()}", data, MEDIA[fmt])},
    )


def verify(service: Service, data: bytes, fmt: str) -> dict[str, Any]:
    response = service.client.post(
        "/v1/label/verify",
        headers=service.h("platform"),
        files={"image": (f"in.{fmt.lower()}", data, MEDIA[fmt])},
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def changed_pixels(original: bytes, fmt: str) -> bytes:
    """The same file with other pixels: every metadata segment or chunk (the C2PA
    manifest among them) kept, only the image data replaced."""
    image = Image.open(io.BytesIO(original)).convert("RGB")
    image.paste((255, 0, 255), (0, 0, 40, 40))
    redone = encode(image, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    if fmt == "JPEG":
        return _jpeg_headers(original) + _jpeg_body(redone)
    head, chunks = original[:8], _png_chunks(original)
    new_data = b"".join(body for kind, body in _png_chunks(redone) if kind == b"IDAT")
    out, done = [head], False
    for kind, body in chunks:
        if kind == b"IDAT":
            if not done:
                out.append(_png_chunk(b"IDAT", new_data))
                done = True
            continue
        out.append(_png_chunk(kind, body))
    return b"".join(out)


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment before the scan."""
    found, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        found.append((marker, at, at + 2 + length))
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        at += 2 + length
    return found


def _jpeg_headers(data: bytes) -> bytes:
    """SOI and the APPn segments (metadata, the C2PA manifest)."""
    return b"\xff\xd8" + b"".join(
        data[s:e] for m, s, e in _jpeg_segments(data) if 0xE0 <= m <= 0xEF
    )


def _jpeg_body(data: bytes) -> bytes:
    """Everything from the first segment that is not APPn (tables, frame, scan)."""
    start = next(s for m, s, _ in _jpeg_segments(data) if not 0xE0 <= m <= 0xEF)
    return data[start:]


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_labelled_output_carries_verified_credentials(signing: Service, fmt: str) -> None:
    picture = scene(2701 if fmt == "JPEG" else 2702, (256, 192))
    checked = signing.check("platform", encode(picture, fmt)).json()["results"][0]
    labelled = label(signing, encode(picture, fmt), fmt, check_id=checked["check_id"])
    assert labelled.status_code == 200, labelled.text
    assert labelled.headers["content-type"] == MEDIA[fmt]

    found = verify(signing, labelled.content, fmt)
    assert found["labelled"] is True  # the GB 45438 label reads back
    assert found["label"]["provider"] == "genco" and found["label"]["content_id"] == "out-1"
    credentials = found["c2pa"]
    assert credentials["present"] and credentials["valid"], credentials
    assert credentials["validation_state"] == "Trusted" and credentials["failures"] == []
    assert credentials["created"]["action"] == "c2pa.created"
    assert credentials["created"]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    claim = credentials["check"]
    assert claim == credentials["assertions"][CHECK_ASSERTION]
    assert claim["check_id"] == checked["check_id"] and claim["provider"] == "genco"
    assert claim["decision"] == checked["decision"] == "allow"
    assert claim["policy_version"] == checked["verdict"]["policy_version"]
    assert claim["index_version"] == checked["verdict"]["index_version"]
    assert credentials["offline"]["remote_manifest_fetch"] is False
    assert credentials["offline"]["timestamp_authority"] is None

    tampered = verify(signing, changed_pixels(labelled.content, fmt), fmt)["c2pa"]
    assert tampered["present"] and not tampered["valid"]
    assert tampered["validation_state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in [f["code"] for f in tampered["failures"]]

    stripped = encode(Image.open(io.BytesIO(labelled.content)), fmt)
    bare = verify(signing, stripped, fmt)["c2pa"]
    assert bare["present"] is False and bare["valid"] is False
    assert bare["detail"] == "no C2PA manifest in the image"


def test_the_check_named_must_be_the_callers(signing: Service) -> None:
    picture = encode(scene(2703, (256, 192)), "PNG")
    theirs = signing.check("platform2", picture).json()["results"][0]["check_id"]
    assert label(signing, picture, "PNG", check_id=theirs).status_code == 404
    unnamed = label(signing, picture, "PNG")
    assert unnamed.status_code == 200
    assert verify(signing, unnamed.content, "PNG")["c2pa"]["check"]["check_id"] is None


def test_the_check_named_must_have_screened_the_labelled_image(signing: Service) -> None:
    """The operator's certificate vouches for the check named: a platform cannot name an
    allowed check of one picture on credentials it has signed over another."""
    passed = encode(scene(2704, (256, 192)), "PNG")
    checked = signing.check("platform", passed).json()["results"][0]
    assert checked["decision"] == "allow"
    other = encode(scene(2705, (256, 192)), "PNG")
    refused = label(signing, other, "PNG", check_id=checked["check_id"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "label_error"
    assert "another image" in refused.json()["error"]["message"]
    same = label(signing, passed, "PNG", check_id=checked["check_id"])
    assert same.status_code == 200, same.text
    claim = verify(signing, same.content, "PNG")["c2pa"]["check"]
    assert claim["check_id"] == checked["check_id"] and claim["decision"] == "allow"


def test_without_a_signing_certificate_c2pa_is_refused(tmp_path: Path) -> None:
    with running_service(tmp_path) as service:
        picture = encode(scene(2704, (256, 192)), "PNG")
        refused = label(service, picture, "PNG")
        assert refused.status_code == 422
        assert "SCREENER_C2PA_CERT" in refused.json()["error"]["message"]
        plain = service.client.post(
            "/v1/label",
            headers=service.h("platform"),
            data={"provider": "genco", "content_id": "x"},
            files={"image": ("a.png", picture, "image/png")},
        )
        found = verify(service, plain.content, "PNG")
        assert found["labelled"] is True and found["c2pa"]["present"] is False
