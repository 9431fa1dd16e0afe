"""A generated articulated figure: a body, a head and an arm, each a flat drawing of its
own, that a new pose turns and moves separately (what one homography cannot follow)."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from screener.core.samples import drawing

SIZE = (384, 384)
BODY_AT = (90, 130)


@dataclass(frozen=True)
class Pose:
    arm_angle: float  # degrees, counter-clockwise
    arm_at: tuple[int, int]
    head_angle: float
    head_at: tuple[int, int]


REST = Pose(0.0, (0, 150), 0.0, (130, 10))
# The arm raised and the head tilted: body, head and arm each move rigidly.
NEW_POSE = Pose(50.0, (-10, 10), -35.0, (150, 0))


def _part(seed: int, size: tuple[int, int], angle: float) -> Image.Image:
    part = drawing(seed, size=size).convert("RGBA")
    return part.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)


def figure(pose: Pose, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """The figure in ``pose``: the body fixed, the arm and the head where the pose puts them."""
    out = Image.new("RGBA", SIZE, (*background, 255))
    out.paste(drawing(11, size=(200, 220)).convert("RGBA"), BODY_AT)
    arm = _part(12, (90, 150), pose.arm_angle)
    out.paste(arm, pose.arm_at, arm)
    head = _part(13, (120, 110), pose.head_angle)
    out.paste(head, pose.head_at, head)
    return out.convert("RGB")


def boxes(pose: Pose) -> dict[str, tuple[int, int, int, int]]:
    """Each part's box in the picture (x0, y0, x1, y1)."""
    arm = _part(12, (90, 150), pose.arm_angle)
    head = _part(13, (120, 110), pose.head_angle)
    return {
        "body": (BODY_AT[0], BODY_AT[1], BODY_AT[0] + 200, BODY_AT[1] + 220),
        "arm": (*pose.arm_at, pose.arm_at[0] + arm.width, pose.arm_at[1] + arm.height),
        "head": (*pose.head_at, pose.head_at[0] + head.width, pose.head_at[1] + head.height),
    }
