"""Administration: the audit trail, the policy in force, API keys and display names."""

from __future__ import annotations

from typing import Any

from screener.core.errors import Forbidden
from screener.duties.base import DeskBase, _text
from screener.store.audit import AuditRecord, VerifyReport
from screener.store.keys import ApiKey, Role, require_role


class AdminDuties(DeskBase):
    """Audit, policy, keys: each behind its role."""

    def audit_records(self, key: ApiKey, after: int = 0, limit: int = 100) -> list[AuditRecord]:
        require_role(key, Role.OPERATOR, Role.ADMIN)
        return self.audit.records(after, limit)

    def audit_verify(self, key: ApiKey) -> VerifyReport:
        require_role(key, Role.OPERATOR, Role.ADMIN)
        return self.audit.verify()

    def policy(self, key: ApiKey) -> dict[str, Any]:
        require_role(key, Role.OPERATOR, Role.ADMIN)
        return self.screener.policy.to_dict()

    def create_key(
        self, key: ApiKey, role: str, owner: str, description: str = ""
    ) -> tuple[ApiKey, str]:
        require_role(key, Role.ADMIN)
        return self.keys.create(role, owner, description, actor=key.id)

    def list_keys(self, key: ApiKey, owner: str | None = None) -> list[ApiKey]:
        require_role(key, Role.ADMIN)
        return self.keys.list(owner)

    def revoke_key(self, key: ApiKey, key_id: str) -> ApiKey:
        require_role(key, Role.ADMIN)
        return self.keys.revoke(key_id, actor=key.id)

    def set_display_name(self, key: ApiKey, owner: str, display_name: str) -> str:
        """The name risk prompts give ``owner`` (empty: its account name again): operators
        and admins for any owner, anyone else for its own."""
        if key.role not in (Role.OPERATOR, Role.ADMIN) and owner != key.owner:
            raise Forbidden(f"key {key.id} names {key.owner!r} only")
        display_name = _text("display name", display_name, 200) or ""
        return self.keys.set_display_name(owner, display_name, actor=key.id)

    def display_name(self, key: ApiKey, owner: str) -> str:
        """``owner``'s display name (its account name where none is set)."""
        if key.role not in (Role.OPERATOR, Role.ADMIN) and owner != key.owner:
            raise Forbidden(f"key {key.id} names {key.owner!r} only")
        return self.keys.display_names([owner]).get(owner, owner)
