"""Evidence a check takes from the query's pixels beside its fingerprints, for its leading
candidates: SSCD on the part of the query where verified keypoints put a work (the located
region, `screener.matching.located`), where the work's own pixels put it and where the
query sits inside the work (the placed region, `screener.matching.placed`), and the
aligned agreement (`screener.matching.aligned`)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from screener.core import fusion
from screener.core import regions as regions_mod
from screener.core.decode import DecodedImage
from screener.core.regions import WHOLE
from screener.core.verdict import RegionPair
from screener.matching import aligned, located, placed
from screener.matching.candidates import Best, Candidate
from screener.matching.scoring import Scoring
from screener.matching.signals import RegionFingerprint
from screener.matching.verification import LocalMatch
from screener.models import alignment, descriptor


def _keep_higher(candidate: Candidate, best: Best) -> None:
    """``best`` as the candidate's SSCD region evidence where it beats what it has."""
    name = descriptor("sscd").region_evidence
    current = candidate.best.get(name)
    if current is None or best.value > current.value:
        candidate.best[name] = best


class PixelEvidence(Scoring):
    """The pixel-level evidence of a check's leading candidates (see the module's text)."""

    def _leading(self, candidates: dict[str, Candidate], count: int) -> list[str]:
        """The ``count`` candidates with the highest fused score, best first."""
        fused = {w: fusion.fuse(c.values(), self.policy) for w, c in candidates.items()}
        return sorted(candidates, key=fused.__getitem__, reverse=True)[:count]

    def _align(
        self,
        decoded: DecodedImage,
        candidates: dict[str, Candidate],
        found: dict[str, LocalMatch],
        placements: aligned.Placed | None = None,
    ) -> None:
        """The aligned agreement (`screener.matching.aligned`) of the leading candidates:
        the policy's ``max_matches`` best by fused score, through the quads verified
        keypoints found and where `_place` put the work (``placements``)."""
        chosen = self._leading(candidates, self.policy.matching.max_matches)
        if not chosen:
            return
        original = (decoded.width, decoded.height)
        quads = {
            w: (
                m.reference_id,
                located.in_working(m.quad, original, decoded.image.size),
                m.inliers,
            )
            for w, m in found.items()
            if len(m.quad) == 4
        }
        query = alignment.grey(decoded.image)
        measured = aligned.measure(
            self.squares,
            self.catalog,
            query,
            chosen,
            quads,
            placements or {},
            alignment.colour(decoded.image),
        )
        for work_id, (value, reference_id) in measured.items():
            candidates[work_id].best[aligned.SIGNAL] = Best(
                value, RegionPair(WHOLE, reference_id, WHOLE)
            )

    def _locate(
        self, decoded: DecodedImage, found: dict[str, LocalMatch], candidates: dict[str, Candidate]
    ) -> None:
        """SSCD on the part of the query where verified keypoints put each of the best
        verified works, as region evidence where it beats the work's fixed regions."""
        rules = self.policy.matching.proposals
        working = decoded.image.size
        ranked = sorted(
            (m for m in found.values() if m.inliers >= rules.located_min_inliers),
            key=lambda m: m.inliers,
            reverse=True,
        )
        boxes = {}
        for match in ranked[: rules.located_top]:
            box = located.box_of(
                match.quad,
                (decoded.width, decoded.height),
                working,
                rules.located_margin,
                rules.located_min_side,
            )
            if box is not None and located.worth_cropping(box, working, rules.located_max_share):
                boxes[match.work_id] = box
        if boxes:
            crops = located.crops(decoded.image, boxes)
            self._region_sscd({w: (c, located.REGION) for w, c in crops.items()}, candidates)

    def _place(
        self,
        decoded: DecodedImage,
        candidates: dict[str, Candidate],
        by_signal: dict[str, list[RegionFingerprint]],
    ) -> aligned.Placed:
        """SSCD on the part of the query where each leading candidate's own pixels put it,
        and on the part of the candidate's reference where the query sits
        (`screener.matching.placed`), as region evidence where it beats the other
        regions. Returns where each placed work's reference lies in the query (for the
        aligned agreement)."""
        rules = self.policy.matching.proposals
        if rules.placed_pool == 0:
            return {}
        whole = [
            c.best["sscd_cosine"].value for c in candidates.values() if "sscd_cosine" in c.best
        ]
        if whole and max(whole) >= rules.placed_skip:
            return {}  # the whole query is a copy of a work: nothing pasted in it to look for
        pool = self._leading(candidates, rules.placed_pool)
        search = placed.Search(
            self.templates, self.catalog, decoded.image, pool, rules.placed_max_share
        )
        size = decoded.image.size
        placements: dict[str, list[tuple[int, alignment.Quad]]] = {}
        if rules.placed_top > 0:
            found = placed.crops(search, rules.placed_top)
            self._region_sscd(
                {w: (c, regions_mod.placed(where.box).name) for w, (c, _, where) in found.items()},
                candidates,
            )
            for work_id, (_, ref_id, where) in found.items():
                placements.setdefault(work_id, []).append((ref_id, placed.quad_of(where.box, size)))
        query_whole = next((fp for fp in by_signal.get("sscd", []) if fp.region == WHOLE), None)
        if query_whole is not None and rules.placed_within_top > 0:
            inside = self._place_within(search, rules.placed_within_top, query_whole, candidates)
            for work_id, (ref_id, box) in inside.items():
                placements.setdefault(work_id, []).append((ref_id, placed.quad_within(box, size)))
        return placements

    def _place_within(
        self,
        search: placed.Search,
        top: int,
        query_whole: RegionFingerprint,
        candidates: dict[str, Candidate],
    ) -> dict[str, tuple[int, tuple[float, float, float, float]]]:
        """The query's whole SSCD embedding against the part of each leading candidate's
        reference where the query sits, as region evidence where it beats what it has.
        Returns, per work, the reference and the box in it where the query sits."""
        inside = placed.within(search, top)
        if not inside:
            return {}
        sscd = self.signals.available["sscd"]
        vectors = sscd.fingerprint([crop for crop, _, _ in inside.values()])
        query_vector = np.asarray(query_whole.fingerprint.vector, dtype=np.float32)
        for (work_id, (_, ref_id, where)), fp in zip(inside.items(), vectors, strict=True):
            value = float(np.dot(query_vector, np.asarray(fp.vector, dtype=np.float32)))
            pair = RegionPair(WHOLE, ref_id, regions_mod.placed(where.box).name)
            _keep_higher(candidates[work_id], Best(value, pair))
        return {work_id: (ref_id, where.box) for work_id, (_, ref_id, where) in inside.items()}

    def _region_sscd(
        self, crops: dict[str, tuple[Image.Image, str]], candidates: dict[str, Candidate]
    ) -> None:
        """One SSCD call for a crop per work (with the query region it is named by); each
        crop's best cosine with its work's whole references becomes the work's region
        evidence where it beats what it has."""
        if not crops:
            return
        images = {w: image for w, (image, _) in crops.items()}
        sscd = self.signals.available["sscd"]
        vectors = {
            work_id: np.asarray(fp.vector, dtype=np.float32)
            for work_id, fp in zip(images, sscd.fingerprint(list(images.values())), strict=True)
        }
        stored = self.catalog.fingerprints_of_works(list(images), "sscd", sscd.spec_id)
        for work_id, (value, ref) in located.best_cosines(vectors, stored).items():
            pair = RegionPair(crops[work_id][1], ref.reference_id, ref.region)
            _keep_higher(candidates[work_id], Best(value, pair))
