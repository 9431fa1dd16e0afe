"""The service's settings: the screener's, plus the limits and knobs of the HTTP front."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from screener.core import territory
from screener.core.errors import InputError
from screener.core.settings import Settings


class ServiceSettings(Settings):
    """Read from ``SCREENER_*`` environment variables, like the screener's own."""

    max_request_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="largest request body accepted"
    )
    max_images: int = Field(default=8, ge=1, description="most images in one request")
    # Off by default: on the 2-core machine it never raised throughput (benchmarks/results/
    # http); turn it on where one model call for several images is cheaper (a GPU).
    batching: bool = Field(default=False, description="micro-batch concurrent checks")
    batch_max: int = Field(default=8, ge=1, description="most images in one model call")
    batch_wait_ms: float = Field(
        default=5.0, ge=0, description="how long a check waits for others to join its batch"
    )
    log_json: bool = Field(default=True, description="one JSON object per log line")
    log_level: str = Field(default="INFO")
    platform_territories: dict[str, str] = Field(
        default_factory=dict,
        description="each platform owner's default release territory (ISO 3166-1 alpha-2), "
        'as JSON: {"genco": "CN"}',
    )
    c2pa_cert: Path | None = Field(
        default=None, description="PEM certificate chain that signs C2PA manifests"
    )
    c2pa_key: Path | None = Field(default=None, description="PEM private key of c2pa_cert")
    c2pa_alg: str = Field(default="es256", description="es256, es384, ps256 ... of the key")
    c2pa_trust_anchors: Path | None = Field(
        default=None, description="PEM root certificates whose C2PA signers verify as Trusted"
    )

    @field_validator("platform_territories")
    @classmethod
    def _codes(cls, value: dict[str, str]) -> dict[str, str]:
        try:
            return {owner: territory.code(code) for owner, code in value.items()}
        except InputError as exc:
            raise ValueError(str(exc)) from None
