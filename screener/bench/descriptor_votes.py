"""How often the descriptor votes propose the right work for a partial copy (issue 20).

The accuracy bench at a small size cannot see the votes (with a few works per domain the
global signals already propose every work), so this measures them directly: works drawn
from image folders are put in ``DescriptorVotes`` (their ``per_set`` largest-scale SIFT
descriptors, as registration does), and each work's partial copies (the accuracy bench's
own edits) are voted on with the policy's ``vote_top`` and ``min_votes``. It runs against
whatever ``screener`` is on the path, so the same command measures the compact index and
the earlier one (run this file by its path where the module is missing):

    PYTHONPATH=<worktree> python -m screener.bench.descriptor_votes --images A --images B \\
        --works 80 --seed 11 --out votes.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CATEGORIES = ("composite_small", "composite_medium", "collage_2x2", "crop_offset")


def main() -> None:
    from screener.bench.categories import CATEGORIES as EDITS
    from screener.core.policy import Matching
    from screener.matching.verification import DescriptorVotes
    from screener.models.keypoints import SiftExtractor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, action="append", required=True)
    parser.add_argument("--works", type=int, default=80)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = sorted(f for folder in args.images for f in folder.rglob("*.png"))
    if len(files) < args.works + 3:
        raise SystemExit(f"{len(files)} PNG images under {args.images}, {args.works + 3} needed")
    rng = np.random.default_rng(args.seed)
    chosen = [files[i] for i in rng.choice(len(files), args.works + 3, replace=False)]
    images = []
    for f in chosen:
        with Image.open(f) as im:
            images.append(im.convert("RGBA"))
    works, others = images[: args.works], images[args.works :]
    sift = SiftExtractor()
    votes = DescriptorVotes(sift.spec_id)
    matching = Matching()
    items, work_of = [], {}
    for row, work in enumerate(works, start=1):
        rgb = Image.new("RGB", work.size, (255, 255, 255))
        rgb.paste(work, mask=work.getchannel("A"))
        features = sift.extract(rgb)
        keep = np.argsort(-features.points[:, 2], kind="stable")[: votes.per_set]
        items.append((row, features.descriptors[keep]))
        work_of[row] = f"w{row}"
    votes.index.add_many(items)
    votes._work_of.update(work_of)
    found: dict[str, Any] = {}
    for category in CATEGORIES:
        hits, ranks = 0, []
        for row, work in enumerate(works, start=1):
            query = EDITS[category](work, rng, args.side, others)
            voted = votes.vote(
                sift.extract(query.convert("RGB")), matching.vote_top, matching.min_votes
            )
            names = [w for w, _ in voted]
            hits += f"w{row}" in names
            ranks.append(names.index(f"w{row}") + 1 if f"w{row}" in names else 0)
        found[category] = {"queries": len(works), "proposed": hits, "ranks": ranks}
    result = {
        "command": " ".join(sys.argv),
        "descriptor_index": type(votes.index).__module__,
        "compact": hasattr(votes.index, "structure_bytes"),
        "per_set": votes.per_set,
        "vote_top": matching.vote_top,
        "min_votes": matching.min_votes,
        "categories": found,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for category, r in found.items():
        sys.stdout.write(f"{category}: {r['proposed']} / {r['queries']}\n")


if __name__ == "__main__":
    main()
