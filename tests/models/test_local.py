"""Local features: stored form, verification geometry, and refusal of what is no copy."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from screener.core.samples import scene
from screener.models.keypoints import NOTHING, LocalFeatures, SiftExtractor, VerifyParams, verify
from tests import needs

needs.module("cv2", "local")


@pytest.fixture(scope="module")
def sift() -> SiftExtractor:
    return SiftExtractor(features=600)


def _paste(
    work: Image.Image, canvas: Image.Image, scale: float, angle: float, at: tuple[int, int]
) -> tuple[Image.Image, np.ndarray]:
    """``work`` scaled, rotated by ``angle`` degrees (counter-clockwise) and pasted with its
    top-left bounding corner at ``at``; returns the picture and the 3x3 map from work pixels
    to picture pixels."""
    small = work.resize(
        (round(work.width * scale), round(work.height * scale)), Image.Resampling.LANCZOS
    )
    rotated = small.convert("RGBA").rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
    out = canvas.copy()
    out.paste(rotated, at, rotated.getchannel("A"))
    # work -> scaled -> rotate about the scaled centre -> shift for expand -> paste offset
    t = np.radians(angle)
    c, s = np.cos(t), np.sin(t)
    sw, sh = small.size
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
    centre = np.array([[1, 0, -sw / 2], [0, 1, -sh / 2], [0, 0, 1]])
    back = np.array(
        [[1, 0, rotated.width / 2 + at[0]], [0, 1, rotated.height / 2 + at[1]], [0, 0, 1]]
    )
    scale_m = np.diag([small.width / work.width, small.height / work.height, 1])
    return out, back @ rot @ centre @ scale_m


def test_stored_form_round_trips_and_refuses_bad_shapes(sift: SiftExtractor) -> None:
    features = sift.extract(scene(1))
    assert len(features) > 100
    points, descriptors = features.to_bytes()
    back = LocalFeatures.from_bytes(points, descriptors, features.width, features.height)
    assert np.array_equal(back.points, features.points)
    assert np.array_equal(back.descriptors, features.descriptors)
    with pytest.raises(ValueError, match="disagree"):
        LocalFeatures.from_bytes(points, descriptors[:-128], features.width, features.height)
    with pytest.raises(ValueError, match="whole rows"):
        LocalFeatures.from_bytes(points[:-1], descriptors, features.width, features.height)


@pytest.mark.parametrize(("scale", "angle"), [(0.6, 0.0), (0.5, 12.0), (0.7, -15.0)])
def test_a_work_pasted_into_a_scene_is_verified_with_its_outline(
    sift: SiftExtractor, scale: float, angle: float
) -> None:
    work = scene(7, size=(320, 240))
    picture, mapping = _paste(work, scene(99, size=(512, 400)), scale, angle, (60, 50))
    result = verify(sift.extract(picture), sift.extract(work))
    assert result.found
    assert result.inliers >= 30
    assert result.quad is not None
    corners = np.array([[0, 0, 1], [320, 0, 1], [320, 240, 1], [0, 240, 1]], dtype=float)
    expected = (corners @ mapping.T)[:, :2]
    error = np.abs(np.array(result.quad) - expected).max()
    assert error < 8.0, (np.array(result.quad), expected)
    assert result.pairs.shape == (result.inliers, 4)
    assert 0.3 < result.coverage <= 1.0


def test_inliers_must_carry_keypoint_size_and_angle_through_the_transform(
    sift: SiftExtractor,
) -> None:
    work = scene(7, size=(320, 240))
    picture, _ = _paste(work, scene(99, size=(512, 400)), 0.6, 12.0, (60, 50))
    query, reference = sift.extract(picture), sift.extract(work)
    honest = verify(query, reference)
    assert honest.inliers >= 30
    # The same points and descriptors with every keypoint's angle turned at random (and
    # its size shrunk): positions still agree on the homography, shape and scale do not.
    rng = np.random.default_rng(3)
    turned = query.points.copy()
    turned[:, 3] = (turned[:, 3] + rng.uniform(60, 300, len(turned))) % 360
    refused = verify(LocalFeatures(turned, query.descriptors, query.width, query.height), reference)
    assert refused.inliers == 0 and not refused.found
    assert refused.matches == honest.matches  # the same descriptor matches as before
    shrunk = query.points.copy()
    shrunk[:, 2] /= 3.0
    assert (
        verify(
            LocalFeatures(shrunk, query.descriptors, query.width, query.height), reference
        ).inliers
        == 0
    )
    # Loose bounds let them through again: the filter, not the matching, refused them.
    loose = VerifyParams(max_turn=180.0, max_growth=10.0)
    assert (
        verify(
            LocalFeatures(turned, query.descriptors, query.width, query.height), reference, loose
        ).inliers
        >= 30
    )


def test_a_half_crop_covers_about_half_the_reference(sift: SiftExtractor) -> None:
    work = scene(11, size=(400, 300))
    crop = work.crop((0, 0, 200, 300))
    result = verify(sift.extract(crop), sift.extract(work))
    assert result.found and result.inliers >= 20
    assert result.coverage < 0.65


def test_unrelated_pictures_do_not_verify(sift: SiftExtractor) -> None:
    counts = [
        verify(sift.extract(scene(100 + k)), sift.extract(scene(200 + k))).inliers for k in range(6)
    ]
    assert max(counts) < VerifyParams().min_matches + 4, counts


def test_a_mirror_image_is_not_a_plausible_transform(sift: SiftExtractor) -> None:
    work = scene(5, size=(320, 240))
    # SIFT descriptors are not mirror-invariant, and a mirrored fit is refused as a fold:
    # mirrored copies are the global signals' (dihedral) business. A few chance matches
    # may still agree on some transform, but far fewer than a copy gives.
    result = verify(
        sift.extract(work.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), sift.extract(work)
    )
    assert result.inliers < 12, result.inliers


def test_images_without_texture_give_nothing(sift: SiftExtractor) -> None:
    flat = sift.extract(Image.new("RGB", (200, 200), (40, 90, 200)))
    assert len(flat) == 0
    assert verify(flat, sift.extract(scene(3))) == NOTHING
    assert verify(sift.extract(scene(3)), flat).inliers == 0
