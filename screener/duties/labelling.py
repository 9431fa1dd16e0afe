"""AI-content labels (GB 45438): applying one to an output, recording it, reading one."""

from __future__ import annotations

import hashlib

from screener.duties.base import DeskBase
from screener.labels import gb45438
from screener.store.keys import ApiKey, Role, require_role


class LabelDuties(DeskBase):
    """Labelling outputs and reading labels."""

    def label(
        self,
        key: ApiKey,
        data: bytes,
        label: gb45438.Label,
        *,
        visible: bool = False,
        visible_text: str | None = None,
    ) -> gb45438.Labelled:
        require_role(key, Role.PLATFORM, Role.OPERATOR, Role.ADMIN)
        return gb45438.apply(
            data,
            label,
            visible=visible or visible_text is not None,
            visible_text=visible_text,
            limits=self.screener.limits,
        )

    def record_label(
        self,
        key: ApiKey,
        source: bytes,
        labelled: bytes,
        label: gb45438.Label,
        *,
        visible: bool,
        c2pa: bool,
        check_id: str | None,
    ) -> None:
        """Audit a label written (``label.apply``): what came in, what went out, and whether
        the operator's certificate signed it, so a credential found later can be traced."""
        self.audit.append(
            key.id,
            "label.apply",
            hashlib.sha256(labelled).hexdigest(),
            {
                "input_sha256": hashlib.sha256(source).hexdigest(),
                "provider": label.provider,
                "content_id": label.content_id,
                "visible": visible,
                "c2pa": c2pa,
                "check_id": check_id,
            },
        )

    def read_label(self, key: ApiKey, data: bytes) -> gb45438.Label | None:
        require_role(key, Role.PLATFORM, Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
        return gb45438.read(data, limits=self.screener.limits)
