"""All settings in one object, read from ``SCREENER_*`` environment variables.

Building a `Settings` is cheap: nothing heavy (models, indexes, database connections) is
made here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from screener.models import descriptors


def default_signals() -> list[str]:
    """The registered signals that run unless ``signals`` says otherwise (their descriptors
    say so), in registration order."""
    return [name for name, d in descriptors().items() if d.default_on]


MILVUS_STRUCTURES = ("auto", "FLAT", "HNSW", "IVF_FLAT", "BIN_FLAT", "BIN_IVF_FLAT")


class Settings(BaseSettings):
    """Where state lives, which signals run and how, and the limits on input."""

    model_config = SettingsConfigDict(env_prefix="SCREENER_", extra="ignore")

    data_dir: Path = Field(default=Path("screener-data"), description="where state lives")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    policy_path: Path | None = Field(
        default=None, description="policy file; default: the policy shipped with the package"
    )

    signals: Annotated[list[str], NoDecode] = Field(default_factory=default_signals)
    require_signals: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="signals whose absence is a start-up error"
    )

    work_size: int = Field(default=512, ge=64, description="long side of the one downscaled copy")
    regions: bool = Field(default=True, description="also fingerprint a 2x2 grid and centre crop")
    region_proposals: bool = Field(
        default=True,
        description="with regions, also fingerprint a query's content box (a padded border "
        "trimmed) and a collage's tiles (screener/core/proposals.py); false: the fixed "
        "regions only",
    )
    located_region: bool = Field(
        default=True,
        description="compare SSCD on the part of the query where verified keypoints put a "
        "work (screener/matching/located.py); false: keypoints and fixed regions only",
    )
    placed_region: bool = Field(
        default=True,
        description="search the query for the leading candidates' own pixels and compare SSCD "
        "on the box found, outside the reference's alpha blanked "
        "(screener/matching/placed.py); false: keypoint-located and fixed regions only",
    )
    aligned_agreement: bool = Field(
        default=True,
        description="compare a check's leading candidates with their references cell by "
        "cell, the query brought into each reference's frame (screener/models/alignment.py): "
        "evidence aligned_agreement, which the shipped policy's margin_gate and "
        "contradiction use (a look-alike that lines up and differs loses score); false: not "
        "measured, the margin counts whole and nothing is taken",
    )

    check_retention_days: int = Field(
        default=0,
        ge=0,
        description="days an allowed check's fingerprints are kept for notices to re-screen "
        "(its verdict record stays); 0 keeps them forever (docs/notices.md)",
    )
    retention_every_hours: float = Field(
        default=24.0,
        gt=0,
        description="how often the service ages out check fingerprints (also at start-up)",
    )

    sscd_windows: bool = Field(
        default=False,
        description="also describe many windows of a query from one SSCD trunk call "
        "(screener/models/featuremap.py): evidence sscd_window_cosine",
    )
    sscd_window_side: int = Field(
        default=512, ge=64, le=2048, description="long side of the query fed to SSCD's trunk"
    )
    sscd_window_fractions: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [0.3, 0.45, 0.6, 0.75],
        description="window sides as fractions of the query's (comma-separated)",
    )
    sscd_model: str = "sscd"
    sscd_weights: Path | None = None
    sscd_threads: int = Field(
        default=0, ge=0, description="0: the thread policy decides (screener.matching.threads)"
    )
    sscd_shape_step: int = Field(
        default=0,
        ge=0,
        le=64,
        description="round SSCD input sides to a multiple of this, so that the whole image "
        "and its regions go through the model in one call (0: exact sizes, one call each)",
    )
    thread_policy: Literal["cores", "libraries"] = Field(
        default="libraries",
        description="'cores': one plan sized to the cores (ONNX Runtime gets them without "
        "spinning, OpenCV and FAISS one thread each); 'libraries': each library decides",
    )
    threads: int = Field(default=0, ge=0, description="cores the 'cores' plan uses (0: all)")
    blas_threads: int = Field(
        default=1,
        ge=0,
        description="numpy's BLAS pool, under either policy (0: BLAS decides); a check's "
        "matrix products are small, and BLAS's idle threads spin on the cores SIFT needs",
    )

    clip_arch: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"
    clip_weights: Path | None = None
    clip_threads: int = Field(default=0, ge=0)

    # The semantic signal (screener/models/semantic.py): the shipped EfficientNet-Lite0, or an ONNX
    # image tower of the operator's own with its preprocessing.
    semantic_onnx: Path | None = Field(
        default=None, description="an ONNX image tower; default: the shipped backbone"
    )
    semantic_size: int = Field(default=224, ge=32, description="the tower's input side")
    semantic_mean: tuple[float, float, float] = (127.0, 127.0, 127.0)
    semantic_std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    semantic_output: str | None = Field(default=None, description="output node; None: first")
    semantic_cache_dir: Path | None = Field(
        default=None, description="where the shipped backbone is exported; default data_dir/models"
    )
    semantic_threads: int = Field(default=0, ge=0, description="0: ONNX Runtime decides")

    local_features: bool = Field(
        default=True,
        description="verify candidates with local features (OpenCV SIFT + RANSAC)",
    )
    local_max_features: int = Field(
        default=600, ge=16, le=5000, description="SIFT keypoints kept per image"
    )

    background_bank: Literal["packaged", "none"] = Field(
        default="packaged",
        description="the background bank while data_dir has none of its own (`screener "
        "background build`): the one shipped with the package, or none",
    )

    index_structure: str = Field(
        default="auto",
        description="a factory string: 'auto', a FAISS one with or without its backend "
        "('faiss:IVF1024,Flat', 'Flat'), or a Milvus index type ('milvus:HNSW'; FLAT, HNSW, "
        "IVF_FLAT, BIN_FLAT, BIN_IVF_FLAT; without 'milvus:' with index_backend=milvus)",
    )
    index_threads: int = Field(
        default=1, ge=0, description="FAISS threads per search (0: one per core)"
    )
    index_backend: Literal["faiss", "milvus"] = Field(
        default="faiss",
        description="'faiss': index files in data_dir; 'milvus': collections on a Milvus "
        "server that several instances share",
    )
    milvus_uri: str | None = Field(default=None, description="e.g. http://127.0.0.1:19530")
    milvus_token: str | None = Field(default=None, description="'user:password' or an API key")
    milvus_collection_prefix: str = Field(
        default="screener",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="collections are named <prefix>_<signal>_<spec digest>",
    )
    milvus_consistency: Literal["Session", "Bounded", "Strong"] = Field(
        default="Session", description="consistency level of searches (see docs/deploy.md)"
    )

    max_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=50_000_000, ge=1)

    @field_validator("signals", "require_signals", "sscd_window_fractions", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sscd_window_fractions")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        bad = [f for f in value if not 0.0 < f <= 1.0]
        if bad:
            raise ValueError(f"window fractions lie in (0, 1], not {bad}")
        return value

    @field_validator("signals", "require_signals")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        known = descriptors()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {sorted(known)}")
        return value

    @model_validator(mode="after")
    def _semantic_cache(self) -> Settings:
        """The exported semantic tower lives in the data directory unless told otherwise."""
        if self.semantic_cache_dir is None:
            self.semantic_cache_dir = self.data_dir / "models"
        return self

    @model_validator(mode="after")
    def _milvus_backend(self) -> Settings:
        """With the Milvus backend a server URI is needed and ``index_structure`` names a
        Milvus index type (``screener.matching.signal_indexes.MilvusTarget`` carries the rest)."""
        if self.index_backend != "milvus":
            return self
        if not self.milvus_uri:
            raise ValueError("SCREENER_INDEX_BACKEND=milvus needs SCREENER_MILVUS_URI")
        if self.index_structure.removeprefix("milvus:") not in MILVUS_STRUCTURES:
            raise ValueError(
                f"index_structure {self.index_structure!r} is not a Milvus structure; "
                f"use one of {list(MILVUS_STRUCTURES)}"
            )
        return self

    def signal_options(self, name: str) -> dict[str, object]:
        """The keywords for signal ``name``'s factory, from the settings its descriptor
        names (SSCD's ``model`` from ``sscd_model``, ...)."""
        return {
            keyword: getattr(self, setting)
            for keyword, setting in descriptors()[name].options.items()
        }

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"
