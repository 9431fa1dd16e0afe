"""Local features with geometric verification (OpenCV SIFT + RANSAC).

Global fingerprints see the whole picture; a protected character cropped to half, rotated,
seen in perspective or pasted into a new scene keeps most of its local structure. Here an
image becomes a few hundred keypoints with SIFT descriptors, and a query is verified
against one reference by matching descriptors (Lowe's ratio test, both ways) and fitting
a homography with RANSAC. The inliers that agree on one plausible transform, in place
and in each keypoint's size and orientation, are the evidence; the reference's outline
carried through that transform is the matched region in the query.

SIFT was chosen by measurement on the project's clip-art suite (``screener bench
accuracy``): ORB is 7x cheaper but its binary descriptors found far fewer inliers on
flat drawings, and AKAZE is gone from OpenCV 5.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener.models.base import ModelUnavailable

# The points and descriptors of one image, as stored: float32 (N, 4) rows of x, y, size,
# angle in the pixels of the image they were found in, and uint8 (N, 128) descriptors.
POINT_COLUMNS = 4
DESCRIPTOR_BYTES = 128


def _cv2() -> Any:
    try:
        return importlib.import_module("cv2")
    except ImportError as exc:
        raise ModelUnavailable(
            "local features need OpenCV: pip install 'screener[local]' "
            f"(opencv-python-headless) ({exc})"
        ) from None


@dataclass(frozen=True)
class LocalFeatures:
    """The keypoints of one image and the size of the image they are in."""

    points: npt.NDArray[np.float32]  # (N, 4): x, y, size, angle
    descriptors: npt.NDArray[np.uint8]  # (N, 128)
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def to_bytes(self) -> tuple[bytes, bytes]:
        """The stored form: points and descriptors as raw little-endian bytes."""
        return (
            np.ascontiguousarray(self.points, dtype="<f4").tobytes(),
            np.ascontiguousarray(self.descriptors, dtype=np.uint8).tobytes(),
        )

    @classmethod
    def from_bytes(
        cls, points: bytes, descriptors: bytes, width: int, height: int
    ) -> LocalFeatures:
        """The inverse of :meth:`to_bytes`; refuses bytes of the wrong shape."""
        if len(points) % (4 * POINT_COLUMNS) or len(descriptors) % DESCRIPTOR_BYTES:
            raise ValueError("stored local features have a size that is not whole rows")
        p = np.frombuffer(points, dtype="<f4")
        d = np.frombuffer(descriptors, dtype=np.uint8)
        n = p.size // POINT_COLUMNS
        if d.size // DESCRIPTOR_BYTES != n:
            raise ValueError(
                f"stored local features disagree: {n} points, {d.size // DESCRIPTOR_BYTES} "
                "descriptors"
            )
        return cls(
            p.reshape(n, POINT_COLUMNS).astype(np.float32),
            d.reshape(n, DESCRIPTOR_BYTES),
            width,
            height,
        )


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying a query against one reference.

    ``inliers`` is the number of matches that agree on one plausible transform (0 where
    none was found), ``coverage`` the share of the reference's outline box that those
    inliers span, ``quad`` the reference's corners carried into the query's pixels (top
    left, top right, bottom right, bottom left), and ``pairs`` the inlier matches as rows
    of query x, y and reference x, y.
    """

    inliers: int
    matches: int
    coverage: float
    quad: tuple[tuple[float, float], ...] | None
    pairs: npt.NDArray[np.float32]

    @property
    def found(self) -> bool:
        return self.quad is not None


NOTHING = Verification(0, 0, 0.0, None, np.zeros((0, 4), dtype=np.float32))


class SiftExtractor:
    """SIFT keypoints of an image's grey copy, strongest first, at most ``features``."""

    name = "sift"

    # Contrast 0.005 rather than OpenCV's 0.04 (or 0.01): flat clip art has few strong
    # corners, and a pasted copy needs enough reference keypoints to gather inliers
    # (on 40 Oxygen icons pasted into scenes, 16+ inliers for 0.90 against 0.82 at 0.01).
    # Edge threshold 20 rather than 10: the corners of flat shapes look edge-like to SIFT's
    # curvature test. On 50 Tango icons (a tuning set, not the benchmark's), the median
    # verified inliers of a work pasted into a scene went from 48 to 60 and of a
    # perspective warp from 35 to 43, while the most that an unrelated picture reached
    # stayed 7; at 40, unrelated pictures reached 21.
    def __init__(self, features: int = 600, contrast: float = 0.005, edge: float = 20.0) -> None:
        self._cv2 = _cv2()
        self.features = features
        self.contrast = contrast
        self.edge = edge
        self.spec_id = f"sift/opencv-{self._cv2.__version__}/n{features}/c{contrast}/e{edge:g}"
        self._sift = self._cv2.SIFT_create(
            nfeatures=features, contrastThreshold=contrast, edgeThreshold=edge
        )

    def extract(self, image: Image.Image) -> LocalFeatures:
        grey = np.asarray(image.convert("L"), dtype=np.uint8)
        keypoints, descriptors = self._sift.detectAndCompute(grey, None)
        if descriptors is None or not keypoints:
            return LocalFeatures(
                np.zeros((0, POINT_COLUMNS), dtype=np.float32),
                np.zeros((0, DESCRIPTOR_BYTES), dtype=np.uint8),
                image.width,
                image.height,
            )
        points = np.array(
            [(k.pt[0], k.pt[1], k.size, k.angle) for k in keypoints], dtype=np.float32
        )
        # SIFT descriptors are non-negative floats below 256 by construction.
        quantised = np.clip(np.rint(descriptors), 0, 255).astype(np.uint8)
        return LocalFeatures(points, quantised, image.width, image.height)


@dataclass(frozen=True)
class VerifyParams:
    """How strict verification is: the ratio test, RANSAC's pixel tolerance, the bounds
    on a plausible transform (a copy is not mirrored, folded or shrunk to a dot) and how
    far an inlier's keypoint may turn (degrees) or grow (a factor) beyond what the
    transform does at its place."""

    ratio: float = 0.8
    tolerance: float = 6.0
    min_matches: int = 6
    min_scale: float = 0.08
    max_scale: float = 12.0
    max_anisotropy: float = 4.0
    max_turn: float = 20.0
    max_growth: float = 1.5


def _mutual_ratio_matches(
    cv2: Any, query: LocalFeatures, reference: LocalFeatures, ratio: float
) -> npt.NDArray[np.int64]:
    """(K, 2) index pairs that pass the ratio test and are each other's nearest."""
    if len(query) < 2 or len(reference) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    q = query.descriptors.astype(np.float32)
    r = reference.descriptors.astype(np.float32)
    forward = matcher.knnMatch(q, r, k=2)
    backward = {m.queryIdx: m.trainIdx for m in matcher.match(r, q)}
    pairs = [
        (m.queryIdx, m.trainIdx)
        for m, n in (pair for pair in forward if len(pair) == 2)
        if m.distance < ratio * n.distance and backward.get(m.trainIdx) == m.queryIdx
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _plausible(
    homography: npt.NDArray[np.float64], reference: LocalFeatures, params: VerifyParams
) -> tuple[tuple[float, float], ...] | None:
    """The reference's corners in the query, or None for an implausible transform."""
    w, h = float(reference.width), float(reference.height)
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], dtype=np.float64)
    mapped = corners @ homography.T
    if np.any(mapped[:, 2] <= 1e-9):  # a corner behind the camera: folded
        return None
    quad = mapped[:, :2] / mapped[:, 2:3]
    # Convex with the same turning direction at every corner (no mirror, no fold).
    edges = np.roll(quad, -1, axis=0) - quad
    turns = (
        edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1]
        - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    )
    if not (np.all(turns > 0)):
        return None
    sides = np.linalg.norm(edges, axis=1)
    scale_x = (sides[0] + sides[2]) / (2 * w)
    scale_y = (sides[1] + sides[3]) / (2 * h)
    scale = float(np.sqrt(scale_x * scale_y))
    if not params.min_scale <= scale <= params.max_scale:
        return None
    if max(scale_x, scale_y) / max(min(scale_x, scale_y), 1e-9) > params.max_anisotropy:
        return None
    return tuple((float(x), float(y)) for x, y in quad)


def _jacobians(
    homography: npt.NDArray[np.float64], xy: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """(N, 2, 2): the homography's derivative at each reference point."""
    h = homography
    x, y = xy[:, 0], xy[:, 1]
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    u = h[0, 0] * x + h[0, 1] * y + h[0, 2]
    v = h[1, 0] * x + h[1, 1] * y + h[1, 2]
    out = np.empty((xy.shape[0], 2, 2))
    for row, top in ((0, u), (1, v)):
        for col in (0, 1):
            out[:, row, col] = (h[row, col] * w - top * h[2, col]) / (w * w)
    return out


def _consistent(
    homography: npt.NDArray[np.float64],
    query: npt.NDArray[np.float64],
    reference: npt.NDArray[np.float64],
    params: VerifyParams,
) -> npt.NDArray[np.bool_]:
    """Which inlier pairs also agree with the transform in keypoint size and angle.

    RANSAC checks only where a keypoint lands; a true copy also carries each keypoint's
    scale and orientation through the transform (Lowe's Hough step), chance agreements
    between unrelated pictures mostly do not. On the Tango tuning icons the true pairs of
    rotated copies turned within 5.4 degrees and grew within 17 % for 95 % of them.
    Rows are x, y, size, angle (OpenCV's angle: degrees, the same turning sense as the
    pixel axes).
    """
    jac = _jacobians(homography, reference[:, :2])
    local_scale = np.sqrt(np.abs(np.linalg.det(jac)))
    growth = query[:, 2] / np.maximum(reference[:, 2], 1e-6) / np.maximum(local_scale, 1e-9)
    angle = np.deg2rad(reference[:, 3])
    carried = np.einsum("nij,nj->ni", jac, np.stack([np.cos(angle), np.sin(angle)], axis=1))
    expected = np.rad2deg(np.arctan2(carried[:, 1], carried[:, 0]))
    turn = (query[:, 3] - expected + 180.0) % 360.0 - 180.0
    return np.asarray(
        (np.abs(turn) <= params.max_turn)
        & (np.abs(np.log(np.maximum(growth, 1e-9))) <= np.log(params.max_growth)),
        dtype=bool,
    )


@dataclass(frozen=True)
class _Fit:
    """One homography fit: the verification, and for :func:`verify_parts` the transform,
    RANSAC's inliers (``fitted``) and those that also agree in size and angle (``kept``)
    as masks over the matches."""

    verification: Verification
    homography: npt.NDArray[np.float64] | None = None
    fitted: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    kept: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def found(self) -> bool:
        return self.verification.found


def _fit(
    cv2: Any,
    query: LocalFeatures,
    reference: LocalFeatures,
    index_pairs: npt.NDArray[np.int64],
    params: VerifyParams,
) -> _Fit:
    if len(index_pairs) < params.min_matches:
        return _Fit(Verification(0, len(index_pairs), 0.0, None, NOTHING.pairs))
    nothing = _Fit(Verification(0, len(index_pairs), 0.0, None, NOTHING.pairs))
    q_xy = query.points[index_pairs[:, 0], :2].astype(np.float64)
    r_xy = reference.points[index_pairs[:, 1], :2].astype(np.float64)
    homography, mask = cv2.findHomography(
        r_xy, q_xy, cv2.USAC_MAGSAC, params.tolerance, maxIters=2000, confidence=0.999
    )
    if homography is None or mask is None:
        return nothing
    fitted = mask.ravel().astype(bool)
    keep = fitted.copy()
    quad = _plausible(homography, reference, params)
    if quad is None:
        return nothing
    keep[keep] = _consistent(
        homography,
        query.points[index_pairs[keep, 0]].astype(np.float64),
        reference.points[index_pairs[keep, 1]].astype(np.float64),
        params,
    )
    if int(keep.sum()) < 4:
        return nothing
    inlier_r = r_xy[keep]
    span = np.ptp(inlier_r, axis=0) if len(inlier_r) else np.zeros(2)
    coverage = float(span[0] * span[1]) / float(max(1, reference.width * reference.height))
    pairs = np.hstack([q_xy[keep], inlier_r]).astype(np.float32)
    found = Verification(int(keep.sum()), len(index_pairs), min(1.0, coverage), quad, pairs)
    return _Fit(found, homography.astype(np.float64), fitted, keep)


def verify(
    query: LocalFeatures, reference: LocalFeatures, params: VerifyParams | None = None
) -> Verification:
    """Match ``query`` against ``reference`` and fit one homography with RANSAC."""
    params = params or VerifyParams()
    cv2 = _cv2()
    index_pairs = _mutual_ratio_matches(cv2, query, reference, params.ratio)
    return _fit(cv2, query, reference, index_pairs, params).verification


@dataclass(frozen=True)
class PartParams:
    """How several rigid parts of one reference may match one query (an articulated
    character in a new pose: the head turned, an arm raised).

    After the whole-reference homography, further parts are fitted one by one to the
    matches left over, each as a similarity (rotation, one scale, shift: a rigid part
    drawn at another angle; 2 points fix it, so a small part is not left to a homography's
    8 free values). A part counts with ``min_inliers`` or more inliers that also agree in
    keypoint size and angle; its scale within ``max_scale_ratio`` of the first part's (one
    character is drawn at one size); its inliers spanning at least ``min_side`` of the
    reference's longer side both ways (a cluster of keypoints on one corner is not a
    part); no more than ``max_overlap`` of its inliers inside an earlier part's reference
    box; and it must move apart from every earlier part: an earlier part's transform
    carries the new part's reference points, on median, at least ``min_motion`` of the
    reference's longer side (in the query's scale) away from where the new part puts them
    (the matches one rigid part leaves just outside RANSAC's tolerance are not a second
    part). At most ``max_parts`` parts, the first included."""

    min_inliers: int = 6
    tolerance: float = 6.0
    max_scale_ratio: float = 2.0
    min_side: float = 0.08
    max_overlap: float = 0.5
    min_motion: float = 0.05
    max_parts: int = 4


@dataclass(frozen=True)
class Part:
    """One rigid part: its inliers, the part's reference box (x0, y0, x1, y1, reference
    pixels, spanning its inliers) carried into the query as a quad (top left, top right,
    bottom right, bottom left), and its inlier matches as rows of query x, y and
    reference x, y."""

    inliers: int
    quad: tuple[tuple[float, float], ...]
    box: tuple[float, float, float, float]
    pairs: npt.NDArray[np.float32]
    homography: npt.NDArray[np.float64]


def _box(xy: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _carry(
    homography: npt.NDArray[np.float64], box: tuple[float, float, float, float]
) -> tuple[tuple[float, float], ...]:
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], dtype=np.float64)
    mapped = corners @ homography.T
    quad = mapped[:, :2] / mapped[:, 2:3]
    return tuple((float(x), float(y)) for x, y in quad)


def _homography_scale(homography: npt.NDArray[np.float64], at: npt.NDArray[np.float64]) -> float:
    """The transform's mean linear scale over the points ``at``."""
    return float(np.median(np.sqrt(np.abs(np.linalg.det(_jacobians(homography, at))))))


def _part(
    homography: npt.NDArray[np.float64],
    keep: npt.NDArray[np.bool_],
    q_xy: npt.NDArray[np.float64],
    r_xy: npt.NDArray[np.float64],
) -> Part:
    box = _box(r_xy[keep])
    pairs = np.hstack([q_xy[keep], r_xy[keep]]).astype(np.float32)
    return Part(int(keep.sum()), _carry(homography, box), box, pairs, homography)


def _apply(
    homography: npt.NDArray[np.float64], xy: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    mapped = np.hstack([xy, np.ones((len(xy), 1))]) @ homography.T
    w = mapped[:, 2:3]
    safe = np.where(np.abs(w) < 1e-9, 1e-9, w)
    return np.asarray(mapped[:, :2] / safe, dtype=np.float64)


def _same_as(
    earlier: Part, homography: npt.NDArray[np.float64], r: npt.NDArray[np.float64], near: float
) -> bool:
    """Whether ``earlier``'s transform carries ``r`` within ``near`` of ``homography``
    (on median), or holds most of them in its box."""
    apart = np.linalg.norm(_apply(earlier.homography, r) - _apply(homography, r), axis=1)
    return bool(np.median(apart) < near)


def _inside(box: tuple[float, float, float, float], r: npt.NDArray[np.float64]) -> float:
    x0, y0, x1, y1 = box
    inside = (r[:, 0] >= x0) & (r[:, 0] <= x1) & (r[:, 1] >= y0) & (r[:, 1] <= y1)
    return float(inside.mean()) if len(r) else 0.0


def _similarity_part(
    cv2: Any,
    query: LocalFeatures,
    reference: LocalFeatures,
    index_pairs: npt.NDArray[np.int64],
    params: VerifyParams,
    parts: PartParams,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]] | None:
    """Fit one similarity to ``index_pairs``: (3x3 transform, RANSAC's inliers, those that
    also agree in keypoint size and angle), or None where none fits."""
    q_xy = query.points[index_pairs[:, 0], :2].astype(np.float64)
    r_xy = reference.points[index_pairs[:, 1], :2].astype(np.float64)
    affine, mask = cv2.estimateAffinePartial2D(
        r_xy,
        q_xy,
        method=cv2.RANSAC,
        ransacReprojThreshold=parts.tolerance,
        maxIters=2000,
        confidence=0.999,
    )
    if affine is None or mask is None:
        return None
    fitted = mask.ravel().astype(bool)
    homography = np.vstack([affine, [0.0, 0.0, 1.0]])
    agree = fitted.copy()
    if fitted.any():
        agree[fitted] = _consistent(
            homography,
            query.points[index_pairs[fitted, 0]].astype(np.float64),
            reference.points[index_pairs[fitted, 1]].astype(np.float64),
            params,
        )
    return homography, fitted, agree


def verify_parts(
    query: LocalFeatures,
    reference: LocalFeatures,
    params: VerifyParams | None = None,
    parts: PartParams | None = None,
) -> tuple[Verification, tuple[Part, ...]]:
    """:func:`verify`, then the reference's rigid parts found in the query one by one.

    The first part is the whole-reference homography's inliers where it verified (else the
    best similarity on all matches); each further part is the best similarity on the
    matches no earlier fit took (its RANSAC inliers, consistent or not, are set aside).
    Parts are only counted as :class:`PartParams` says; an unrelated picture gives none.
    """
    params = params or VerifyParams()
    parts = parts or PartParams()
    cv2 = _cv2()
    index_pairs = _mutual_ratio_matches(cv2, query, reference, params.ratio)
    whole = _fit(cv2, query, reference, index_pairs, params)
    if len(index_pairs) < max(params.min_matches, parts.min_inliers):
        return whole.verification, ()
    q_xy = query.points[index_pairs[:, 0], :2].astype(np.float64)
    r_xy = reference.points[index_pairs[:, 1], :2].astype(np.float64)
    left = np.ones(len(index_pairs), dtype=bool)
    found: list[Part] = []
    scale: float | None = None
    side = parts.min_side * max(reference.width, reference.height)
    if whole.found and whole.homography is not None:
        taken = whole.fitted
        found.append(_part(whole.homography, whole.kept, q_xy, r_xy))
        scale = _homography_scale(whole.homography, r_xy[whole.kept])
        left &= ~taken
    tries = 0
    while len(found) < parts.max_parts and int(left.sum()) >= parts.min_inliers:
        tries += 1
        if tries > 2 * parts.max_parts:  # a bounded cost: fits that give no part stop
            break
        where = np.flatnonzero(left)
        fit = _similarity_part(cv2, query, reference, index_pairs[where], params, parts)
        if fit is None:
            break
        homography, fitted, agree = fit
        if not fitted.any():
            break
        left[where[fitted]] = False
        keep = np.zeros(len(index_pairs), dtype=bool)
        keep[where[agree]] = True
        if int(keep.sum()) < parts.min_inliers:
            continue
        box = _box(r_xy[keep])
        if box[2] - box[0] < side or box[3] - box[1] < side:
            continue
        if any(_inside(p.box, r_xy[keep]) > parts.max_overlap for p in found):
            continue
        part_scale = _homography_scale(homography, r_xy[keep])
        near = parts.min_motion * max(reference.width, reference.height) * part_scale
        if any(_same_as(p, homography, r_xy[keep], near) for p in found):
            continue
        if not params.min_scale <= part_scale <= params.max_scale:
            continue
        if (
            scale is not None
            and max(part_scale, scale) / max(min(part_scale, scale), 1e-9) > parts.max_scale_ratio
        ):
            continue
        scale = scale if scale is not None else part_scale
        found.append(_part(homography, keep, q_xy, r_xy))
    return whole.verification, tuple(found)
