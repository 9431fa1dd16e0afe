"""Who may say where a work is protected, licensed or judged by its own thresholds.

The owner of a work (or an operator) sets where it is protected and where each licence
holds; its own thresholds are policy, so only operators limit where they apply. Each
change replaces one set of territories and leaves an audit record in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from screener.core import territory
from screener.core.errors import NotFound, quote
from screener.duties.desk import Desk
from screener.store.catalog import Work
from screener.store.keys import ApiKey, Role, require_role


class TerritoryRules:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def _set(
        self, key: ApiKey, work_id: str, scope: str, licensee: str, codes: Sequence[object]
    ) -> Work:
        found = territory.codes(codes)
        payload = {"scope": scope, "territories": list(found)}
        if licensee:
            payload["licensee"] = licensee
        return self.desk.screener.catalog.update_work(
            work_id,
            territories={(scope, licensee): found},
            hook=self.desk.audit.hook(key.id, "work.territories", work_id, payload),
        )

    def protect_in(self, key: ApiKey, work_id: str, codes: Sequence[object]) -> Work:
        """Where the work is protected (empty: everywhere)."""
        work = self.desk._work_for(key, work_id, manage=True)
        return self._set(key, work.id, "work", "", codes)

    def license_in(self, key: ApiKey, work_id: str, licensee: str, codes: Sequence[object]) -> Work:
        """Where one licensee's licence holds (empty: everywhere)."""
        work = self.desk._work_for(key, work_id, manage=True)
        if licensee not in work.licensees:
            raise NotFound(f"work {quote(work_id)} has no licensee {quote(licensee)}")
        return self._set(key, work.id, "licensee", licensee, codes)

    def thresholds_in(self, key: ApiKey, work_id: str, codes: Sequence[object]) -> Work:
        """Where the work's own thresholds apply (empty: everywhere); operators only."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        work = self.desk._work_for(key, work_id, manage=True)
        return self._set(key, work.id, "thresholds", "", codes)
