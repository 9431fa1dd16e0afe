"""C2PA content credentials: sign a labelled output, and verify the credentials of any
image, beside the GB 45438 label (screener/labels/gb45438.py).

The manifest says the image was created by a trained algorithm (a ``c2pa.created``
action with IPTC's ``trainedAlgorithmicMedia`` digital source type), who provided it, and
what the screening decided (``org.screener.check``: check id, decision, policy and index
versions). It is signed with the certificate chain and key the operator configures.

Signing is the last step: the manifest's hash covers every byte around it, so the label's
metadata goes in first and nothing may change the file afterwards.

Offline by design: verifying never fetches a remote manifest or OCSP response, and signing
uses no timestamp authority (so a signature is valid only while its certificate is); the
verify output says so. Trust is decided against the anchors the operator configures, if
any (``Trusted``); without them a correct signature is ``Valid`` and its signer untrusted.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from screener.core.errors import ConfigurationError, LabelError

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CHECK_ASSERTION = "org.screener.check"
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
OFFLINE = {
    "remote_manifest_fetch": False,
    "ocsp_fetch": False,
    "timestamp_authority": None,
    "note": "verified offline: no remote manifest or OCSP fetch; signed without a "
    "timestamp authority, so a signature holds only while its certificate is valid",
}
_SETTINGS = {"remote_manifest_fetch": False, "ocsp_fetch": False}


def _c2pa() -> Any:
    try:
        import c2pa  # type: ignore[import-untyped]  # no stubs; kept behind this function
    except ImportError as exc:  # the optional extra
        raise ConfigurationError(
            f"C2PA needs the c2pa extra (`pip install 'screener[c2pa]'`): {exc}"
        ) from None
    return c2pa


@dataclass(frozen=True)
class Signing:
    """The operator's signing credentials: a PEM chain (signer first) and its key."""

    chain: bytes
    key: bytes
    alg: str = "es256"

    @classmethod
    def load(cls, chain: Path, key: Path, alg: str = "es256") -> Signing:
        if alg.lower() not in ALGORITHMS:
            raise ConfigurationError(f"C2PA algorithm {alg!r} is not one of {list(ALGORITHMS)}")
        try:
            return cls(chain.read_bytes(), key.read_bytes(), alg.lower())
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the C2PA certificate or key: {exc.filename}: {exc.strerror}"
            ) from None


@dataclass(frozen=True)
class Claim:
    """What the manifest says about one output."""

    provider: str
    content_id: str
    check_id: str | None = None
    decision: str | None = None
    policy_version: str | None = None
    index_version: str | None = None


def manifest(claim: Claim, title: str) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": "screener", "version": "1"}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": claim.provider},
                        }
                    ]
                },
            },
            {
                "label": CHECK_ASSERTION,
                "data": {
                    "provider": claim.provider,
                    "content_id": claim.content_id,
                    "check_id": claim.check_id,
                    "decision": claim.decision,
                    "policy_version": claim.policy_version,
                    "index_version": claim.index_version,
                },
            },
        ],
    }


def sign(data: bytes, media_type: str, claim: Claim, signing: Signing) -> bytes:
    """``data`` with a signed C2PA manifest embedded."""
    c2pa = _c2pa()
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(signing.alg.encode(), signing.chain, signing.key, None)
        )
        out = io.BytesIO()
        with c2pa.Builder(manifest(claim, claim.content_id)) as builder:
            builder.sign(signer, media_type, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        raise LabelError(f"C2PA signing failed: {exc}") from None
    return out.getvalue()


def verify(data: bytes, media_type: str, trust_anchors: bytes | None = None) -> dict[str, Any]:
    """The image's C2PA credentials as found: present or not, the validation state
    (``Trusted``, ``Valid`` or ``Invalid``), the failures, and the assertions of the
    active manifest. Never raises for a missing or broken manifest: that is the report."""
    c2pa = _c2pa()
    config: dict[str, Any] = {"verify": {**_SETTINGS, "verify_trust": trust_anchors is not None}}
    if trust_anchors is not None:
        config["trust"] = {"trust_anchors": trust_anchors.decode("ascii", "replace")}
    report: dict[str, Any] = {
        "present": False,
        "validation_state": None,
        "valid": False,
        "trusted": False,
        "failures": [],
        "assertions": {},
        "check": None,
        "created": None,
        "signer": None,
        "offline": OFFLINE,
    }
    try:
        context = c2pa.Context.from_dict(config)
        with c2pa.Reader(media_type, io.BytesIO(data), context=context) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in text or "JumbfNotFound" in text:
            report["detail"] = "no C2PA manifest in the image"
        else:
            report["present"] = True
            report["detail"] = f"the C2PA manifest could not be read: {text}"
        return report
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    state = store.get("validation_state")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    assertions = {a.get("label"): a.get("data") for a in active.get("assertions", [])}
    actions: list[dict[str, Any]] = next(
        (v.get("actions", []) for k, v in assertions.items() if str(k).startswith("c2pa.actions")),
        [],
    )
    report.update(
        present=True,
        validation_state=state,
        valid=state in ("Valid", "Trusted"),
        trusted=state == "Trusted",
        failures=[
            {"code": f.get("code"), "explanation": f.get("explanation")}
            for f in results.get("failure", [])
        ],
        assertions=assertions,
        check=assertions.get(CHECK_ASSERTION),
        created=next((a for a in actions if a.get("action") == "c2pa.created"), None),
        signer=active.get("signature_info"),
    )
    return report
