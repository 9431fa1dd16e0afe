"""Part-level verification: an articulated figure in a new pose verifies as several rigid
parts where one homography holds one part only; unrelated pictures give no parts, and a
rigid copy is one part, not counted twice."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from screener.core.samples import drawing, scene
from screener.models.keypoints import Part, PartParams, SiftExtractor, verify, verify_parts
from tests import needs
from tests.articulated import NEW_POSE, REST, boxes, figure

needs.module("cv2", "local")


@pytest.fixture(scope="module")
def sift() -> SiftExtractor:
    return SiftExtractor(features=600)


def _centre(part: Part) -> tuple[float, float]:
    xs, ys = zip(*part.quad, strict=True)
    return float(np.mean(xs)), float(np.mean(ys))


def _inside(point: tuple[float, float], box: tuple[int, int, int, int]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_a_new_pose_verifies_as_several_parts(sift: SiftExtractor) -> None:
    reference, query = sift.extract(figure(REST)), sift.extract(figure(NEW_POSE))
    whole = verify(query, reference)
    where = boxes(NEW_POSE)
    # One homography holds one part: its inliers all lie on one of the three.
    held = {
        name
        for name, box in where.items()
        if any(_inside((float(x), float(y)), box) for x, y, _, _ in whole.pairs)
    }
    assert whole.found and len(held) >= 1
    on_body = sum(_inside((float(x), float(y)), where["body"]) for x, y, _, _ in whole.pairs)
    assert on_body >= 0.9 * whole.inliers
    result, parts = verify_parts(query, reference)
    assert result.inliers == whole.inliers  # the whole homography's evidence is unchanged
    assert len(parts) >= 2
    assert parts[0].inliers == whole.inliers
    # The further parts sit on the moved head and arm, each on its own.
    landed = [
        next((n for n, box in where.items() if n != "body" and _inside(_centre(p), box)), None)
        for p in parts[1:]
    ]
    assert None not in landed and len(set(landed)) == len(landed)
    assert all(p.inliers >= PartParams().min_inliers for p in parts)


def test_without_the_part_step_only_one_part_counts(sift: SiftExtractor) -> None:
    reference, query = sift.extract(figure(REST)), sift.extract(figure(NEW_POSE))
    _, parts = verify_parts(query, reference, parts=PartParams(max_parts=1))
    assert len(parts) == 1


@pytest.mark.parametrize("seed", range(4))
def test_unrelated_pictures_give_no_parts(sift: SiftExtractor, seed: int) -> None:
    reference = sift.extract(figure(REST))
    for image in (scene(200 + seed), drawing(300 + seed)):
        _, parts = verify_parts(sift.extract(image), reference)
        assert parts == ()


def test_a_rigid_copy_is_one_part_not_counted_twice(sift: SiftExtractor) -> None:
    work = figure(REST)
    copy = work.resize((300, 300), Image.Resampling.LANCZOS).rotate(
        20, expand=True, fillcolor=(255, 255, 255)
    )
    result, parts = verify_parts(sift.extract(copy), sift.extract(work))
    assert result.found and len(parts) == 1
    assert parts[0].inliers == result.inliers


def _bent(image: Image.Image, amplitude: float) -> Image.Image:
    """``image`` bent smoothly (a wave of ``amplitude`` pixels): one piece, no parts."""
    cv2 = needs.module("cv2", "local")
    pixels = np.asarray(image)
    ys, xs = np.indices(pixels.shape[:2]).astype(np.float32)
    map_x = xs + amplitude * np.sin(ys / 60.0)
    map_y = ys + amplitude * np.sin(xs / 70.0)
    bent = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    return Image.fromarray(bent)


@pytest.mark.parametrize("seed", [11, 31])
def test_a_gently_bent_copy_is_one_part_not_counted_twice(sift: SiftExtractor, seed: int) -> None:
    work = drawing(seed)
    reference, query = sift.extract(work), sift.extract(_bent(work, 10.0))
    result, parts = verify_parts(query, reference)
    assert result.found and [p.inliers for p in parts] == [result.inliers]
    # What the separation rules hold back: without them the matches a bend leaves just
    # outside the first fit's tolerance count again as further "parts".
    _, loose = verify_parts(query, reference, parts=PartParams(min_motion=0.0, max_overlap=1.0))
    assert len(loose) > 1
