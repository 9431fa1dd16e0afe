"""What a signal is, declared once beside the fingerprinter that makes it.

A fingerprinter says how pixels become a vector; its `SignalDescriptor` says everything the
rest of the screener needs to know about that vector as evidence: the names its values
carry in a verdict, whether a smaller value is closer, which quality floor of the policy
applies, the family it is grouped with, which settings feed its factory, how it is shown,
and whether it runs by default. The evidence list, the policy's families, the default
signal set, the settings' known signals and the CLI's columns are all derived from the
registered descriptors (`screener.models.base.register`), so adding a signal is one module
here and one calibration in the policy file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Metric = Literal["hamming", "cosine"]

# How each metric orders values: Hamming distance counts differing bits (fewer is closer),
# cosine similarity of unit vectors grows as they align (more is closer).
LOWER_IS_CLOSER: Mapping[str, bool] = MappingProxyType({"hamming": True, "cosine": False})

_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")


@dataclass(frozen=True)
class SignalDescriptor:
    """Everything about one signal except how it is computed.

    ``evidence`` is the name its whole-image value carries in a verdict and the policy
    (``pdq_hamming``); the same value where one side is a region is ``region_evidence``
    (``pdq_region_hamming``), calibrated on its own. ``extra_evidence`` names further
    values derived from the signal elsewhere (SSCD's background-normalised cosine).
    ``quality_floor`` names the policy ``matching`` setting below which a fingerprint's
    own quality keeps it out (PDQ: ``pdq_min_quality``); None where the signal has no
    quality. ``options`` maps each keyword of the fingerprinter's factory to the `Settings`
    field that feeds it. ``display`` heads the signal's column where checks are tabulated
    (``table``: whether it has one). ``thread_plan``: the factory takes ``threads`` and
    ``spinning``, and the check's thread plan (``screener/matching/threads.py``) sets them.
    ``query_regions``: what the signal sees of a query besides the whole picture.
    ``"fixed"``: the fixed grid and centre cells and the regions the picture proposes (a
    copy's detail survives in a quarter of the picture). ``"figure"``: the proposed
    regions and the figure cut out of a smooth background, not the fixed cells (a
    descriptor of what things are describes a figure, not a quarter of one, and each
    crop is one more model run). References are fingerprinted alike either way.
    ``spins``: whether the pool may keep its threads spinning between runs where the plan
    allows it. A signal that runs briefly beside SSCD says False: its spinning threads
    took SSCD's cores (measured: SSCD 114 to 137 ms a check, docs/semantic.md).
    """

    evidence: str
    metric: Metric
    family: str
    display: str
    default_on: bool = True
    table: bool = True
    quality_floor: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    extra_evidence: tuple[str, ...] = ()
    thread_plan: bool = False
    query_regions: Literal["fixed", "figure"] = "fixed"
    spins: bool = True

    def __post_init__(self) -> None:
        for name in (self.evidence, *self.extra_evidence):
            if not _NAME.fullmatch(name):
                raise ValueError(
                    f"evidence name {name!r} must be lower-case words joined by underscores, "
                    "ending in the measure (e.g. pdq_hamming)"
                )
        if self.query_regions not in ("fixed", "figure"):
            raise ValueError(f"query_regions {self.query_regions!r} is not fixed or figure")
        if self.metric not in LOWER_IS_CLOSER:
            raise ValueError(f"metric {self.metric!r} is not one of {sorted(LOWER_IS_CLOSER)}")
        if not self.family.strip() or not self.display.strip():
            raise ValueError("a signal needs a family and a display name")
        # Frozen all the way down: the registry hands the same object to every caller.
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @property
    def region_evidence(self) -> str:
        """The evidence name where one side is a region: ``region`` after the first word."""
        head, rest = self.evidence.split("_", 1)
        return f"{head}_region_{rest}"

    @property
    def lower_is_closer(self) -> bool:
        return LOWER_IS_CLOSER[self.metric]

    @property
    def own_evidence(self) -> tuple[str, ...]:
        """Every evidence name this signal gives: whole, region, then the derived ones."""
        return (self.evidence, self.region_evidence, *self.extra_evidence)
