"""GET /v1/checks/{id}/evidence.png: the picture of a flagged check, for those who may see
the check's image, and a clear 404 for everyone and everything else."""

from __future__ import annotations

import io

from PIL import Image

from screener.core.samples import scene
from tests.service.conftest import Service, encode
from tests.service.test_api import copy_of, only


def test_flagged_check_has_an_evidence_picture(service: Service) -> None:
    original = scene(21, size=(480, 360))
    assert service.register("holder", "hero", encode(original)).status_code == 201
    canvas = scene(22, size=(800, 600))
    canvas.paste(original.resize((360, 270)), (300, 200))
    blocked = only(service.check("platform", copy_of(original)))
    composite = only(service.check("platform", encode(canvas, "JPEG", quality=90)))
    assert blocked["decision"] == "block", blocked["fused_score"]
    local = blocked["verdict"]["matches"][0]["local"]
    assert local is not None and local["inliers"] >= 20 and len(local["quad"]) == 4
    assert composite["verdict"]["matches"] or composite["verdict"]["near_misses"]

    url = f"/v1/checks/{blocked['check_id']}/evidence.png"
    for who in ("platform", "operator"):
        picture = service.client.get(url, headers=service.h(who))
        assert picture.status_code == 200, picture.text
        assert picture.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(picture.content))
        assert image.format == "PNG" and image.width >= 600 and image.height >= 300
        assert len(picture.content) < 1_000_000

    # The rights holder whose work matched sees the picture of that match (the same as the
    # platform's: one picture per check and work); another platform and another rights
    # holder do not.
    own = service.client.get(url, headers=service.h("holder"))
    assert own.status_code == 200, own.text
    assert own.content == service.client.get(url, headers=service.h("platform")).content
    assert service.client.get(f"{url}?work_id=hero", headers=service.h("holder")).content == (
        own.content
    )
    for who in ("platform2", "holder2"):
        refused = service.client.get(url, headers=service.h(who))
        assert refused.status_code == 404, (who, refused.text)
    assert service.client.get(url).status_code == 401
    missing = service.client.get(f"{url}?work_id=no-such-work", headers=service.h("operator"))
    assert missing.status_code == 404 and "no-such-work" in missing.text

    allowed = only(service.check("platform", encode(scene(23))))
    assert allowed["decision"] == "allow"
    none_kept = service.client.get(
        f"/v1/checks/{allowed['check_id']}/evidence.png", headers=service.h("platform")
    )
    assert none_kept.status_code == 404
    assert "allowed outputs are not kept" in none_kept.json()["error"]["message"]
    unknown = service.client.get("/v1/checks/chk-nope/evidence.png", headers=service.h("operator"))
    assert unknown.status_code == 404
