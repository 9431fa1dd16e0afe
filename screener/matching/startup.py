"""Start-up and catch-up: what `Screener` opens (catalog, signals, indexes, local-feature
verification, background bank, character models, prompt screen) and how it keeps the
indexes in step with the catalog, the source of truth. The check stages build on it
(`scoring`, `checks`); `pipeline.Screener` is the front door."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener import index as vindex
from screener.core import policy as policy_mod
from screener.core.decode import DecodedImage, Limits, decode, decode_file
from screener.core.policy import Policy
from screener.core.settings import Settings
from screener.matching import aligned, placed
from screener.matching import background as background_mod
from screener.matching import characters as characters_mod
from screener.matching import threads as threads_mod
from screener.matching.analysis import ImageInput
from screener.matching.registry import Registry, over_black
from screener.matching.signal_indexes import IndexSet, MilvusTarget
from screener.matching.signals import SignalSet
from screener.matching.verification import SIGNAL as LOCAL_SIGNAL
from screener.matching.verification import LocalVerifier
from screener.models import Fingerprinter, ModelUnavailable
from screener.store.catalog import Catalog
from screener.store.prompt_terms import PromptScreen

log = logging.getLogger(__name__)


class ScreenerBase:
    """The opened parts of a screener, kept in step with the catalog."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        policy: Policy | None = None,
        fingerprinters: Iterable[Fingerprinter] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._policy = policy or policy_mod.load(self.settings.policy_path)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.limits = Limits(max_bytes=self.settings.max_bytes, max_pixels=self.settings.max_pixels)
        self.catalog = Catalog(self.settings.resolved_database_url)
        self.squares = aligned.ReferenceSquares()  # references' grey squares, made on demand
        self.colours = characters_mod.ReferenceColours()  # references' colours, likewise
        self.templates = placed.ReferenceTemplates()  # references' search templates, likewise
        self.signals = SignalSet(
            self.settings,
            self.policy.matching.region_min_quality,
            fingerprinters,
            self.policy.matching.proposals,
        )
        threads = threads_mod.plan(self.settings)
        vindex.set_threads(threads.faiss)
        threads_mod.apply_opencv(threads.opencv)
        threads_mod.apply_blas(threads.blas)
        self.indexes = IndexSet(
            self.catalog,
            self.signals.available,
            self.settings.index_dir,
            self.settings.index_structure,
            milvus=MilvusTarget.from_settings(self.settings),
        )
        self.local: LocalVerifier | None = None
        if self.settings.local_features:
            try:
                self.local = LocalVerifier(
                    self.settings.local_max_features, directory=self.settings.index_dir
                )
            except ModelUnavailable as exc:
                self.signals.missing["local"] = str(exc)
                log.warning("local-feature verification is NOT in use: %s", exc)
        self._warn_spec_drift()
        self.background: background_mod.Bank | None = None
        # Generic levels by (bank, signal, work, k, quality floor, stored fingerprint ids).
        self._levels: OrderedDict[tuple[Any, ...], dict[str, float]] = OrderedDict()
        self._levels_lock = threading.Lock()  # checks run on several threads in the service
        self.reload_background()
        self._lock = threading.RLock()
        with self._lock:
            self.indexes.open()
            if self.local is not None:
                self.local.backfill(self.catalog, self.limits, self.settings.work_size, over_black)
                self.local.votes.open(self.catalog)  # the saved index, then what changed
        self.characters = characters_mod.open_models(
            self.catalog,
            self.signals.available.get(characters_mod.SIGNAL),
            lambda data: self.decode(data).image,
            lambda: self.background,
            self.policy.characters,
        )
        if self.characters is not None:
            self.characters.sync()
        self.prompts = PromptScreen(self.catalog)  # loaded on the first prompt
        self.registry = Registry(self)
        self.sync_cohorts()  # what a crash left behind (`screener.matching.cohorts`)

    @property
    def policy(self) -> Policy:
        """The policy in force. Putting one in force warns when it was fitted with another
        spec of a model that runs here (`policy.spec_drift`)."""
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = policy
        self.signals.proposal_rules = policy.matching.proposals  # read at every check
        self._warn_spec_drift()

    @property
    def model_specs(self) -> dict[str, str]:
        """The spec id of every model behind a verdict's evidence: each fingerprinter's,
        and that of the keypoint extractor behind ``local_inliers`` (its OpenCV release)."""
        specs = dict(self.signals.specs)
        if self.local is not None:
            specs[LOCAL_SIGNAL] = self.local.spec_id
        return specs

    def _warn_spec_drift(self) -> None:
        for problem in policy_mod.spec_drift(self._policy, self.model_specs):
            log.warning("%s", problem)

    @property
    def background_dir(self) -> Path:
        return self.settings.data_dir / "background"

    def reload_background(self) -> None:
        """(Re)load the background bank that normalises SSCD and gives the works' generic
        levels: the data directory's own, else (by default) the one shipped with the
        package."""
        sscd = self.signals.available.get("sscd")
        bank = None
        if sscd is not None:
            bank = background_mod.load(self.background_dir, sscd.spec_id, self.signals.specs)
            if bank is None and self.settings.background_bank == "packaged":
                bank = background_mod.packaged(sscd.spec_id, self.signals.specs)
        self.background = bank
        with self._levels_lock:
            self._levels.clear()

    def build_background(
        self,
        files: Sequence[Path],
        source: str,
        progress: Callable[[int], None] | None = None,
    ) -> background_mod.BuildReport:
        """Build (or refresh) the background bank from generic images, leaving out those
        that match a registered work, and put it in use."""

        def is_registered(vector: npt.NDArray[np.float32]) -> bool:
            found = self.indexes.search("sscd", vector[None, :], k=1, radius=None)
            return bool(
                len(found.scores[0]) and found.scores[0][0] >= background_mod.REGISTERED_COSINE
            )

        report = background_mod.build(
            files,
            self.signals,
            self.background_dir,
            source=source,
            limits=self.limits,
            work_size=self.settings.work_size,
            is_registered=is_registered,
            progress=progress,
        )
        self.reload_background()
        return report

    def index_version(self) -> str:
        """The catalog state the indexes reflect, and the background bank in use."""
        version = self.indexes.version()
        if self.background is not None:
            version += f"+bg-{self.background.digest[:12]}"
        return version

    # decoding ---------------------------------------------------------------------------------

    def decode(self, image: ImageInput) -> DecodedImage:
        if isinstance(image, DecodedImage):
            return image
        if isinstance(image, bytes):
            return decode(image, limits=self.limits, max_side=self.settings.work_size)
        return decode_file(Path(image), limits=self.limits, max_side=self.settings.work_size)

    # catching up ------------------------------------------------------------------------------

    def refresh(self) -> int:
        """Catch the indexes up with registrations made elsewhere (another process)."""
        with self._lock:
            if self.catalog.high_water() > min(self.indexes.marks.values(), default=0):
                return self.catch_up()
        return 0

    def catch_up(self, *, added_only: bool = False) -> int:
        """Bring the indexes, and the descriptor index of local features, in step with
        the catalog; returns how many index log entries were replayed. ``added_only``:
        this process only added (the descriptor index then reads just the new rows)."""
        with self._lock:
            replayed = self.indexes.catch_up()
            models = getattr(self, "characters", None)  # None while __init__ opens indexes
            if models is not None:
                models.sync()
            if self.local is not None:
                self.local.votes.sync(self.catalog, added_only=added_only)
            if getattr(self, "registry", None) is not None:  # None while __init__ runs
                self.sync_cohorts()
        return replayed

    def sync_cohorts(self) -> int:
        """Bring the stored cohort levels in step with the catalog (the scoring stage's)."""
        return 0
