"""What the console adds: editing works, the stored images, searching checks, the
dashboard, and previewing, replacing and restoring the policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screener.core.errors import Conflict, Forbidden, InputError, NotFound, PolicyError, quote
from screener.core.policy import Decision, Policy
from screener.duties import stats
from screener.duties.base import _page, _terms, _text
from screener.duties.checks import CheckDuties
from screener.store import policy_store
from screener.store.audit import ensure_tables
from screener.store.catalog import Work
from screener.store.check_records import CheckMatchRow, CheckRecord, CheckRow, check_record, now
from screener.store.keys import ApiKey, Role, require_role


class ConsoleDuties(CheckDuties):
    """Console duties: editing works, images, searching checks, dashboard, policy changes."""

    def update_work(
        self,
        key: ApiKey,
        work_id: str,
        *,
        title: str | None = None,
        aliases: Sequence[str] | None = None,
        related_terms: Sequence[str] | None = None,
    ) -> Work:
        """Change a work's title, aliases and related terms (any script); left-out ones
        stay."""
        work = self._work_for(key, work_id, manage=True)
        if title is not None:
            title = (_text("title", title, 500) or "").strip()
            if not title:
                raise InputError("title must not be empty")
        cleaned: list[str] | None = None
        if aliases is not None:
            cleaned = list(dict.fromkeys(a.strip() for a in aliases if a.strip()))
            for alias in cleaned:
                _text("alias", alias, 200)
            if len(cleaned) > 100:
                raise InputError("at most 100 aliases")
        related = None if related_terms is None else _terms("related term", related_terms)
        changes = {"title": title, "aliases": cleaned}
        if related is not None:
            changes["related_terms"] = related
        return self.screener.catalog.update_work(
            work.id,
            title=title,
            aliases=cleaned,
            related_terms=related,
            hook=self._audited(key, "work.update", work_id, changes),
        )

    def check_image(self, key: ApiKey, check_id: str) -> bytes:
        """The image a review or block kept, for the platform that sent it and operators."""
        with Session(self.engine) as session:
            row = self._check_row(session, key, check_id)
            sha256 = row.image_sha256
        if key.role == Role.RIGHTS_HOLDER or sha256 is None:
            raise NotFound(f"no image kept for check {quote(check_id)}")
        return self.screener.catalog.blob(sha256)

    def reference_image(self, key: ApiKey, work_id: str, reference_id: int) -> bytes:
        """A reference image's bytes as registered, for whoever may read the work."""
        self._work_for(key, work_id)
        for reference in self.screener.catalog.references(work_id):
            if reference.id == reference_id:
                return self.screener.catalog.blob(reference.sha256)
        raise NotFound(f"no reference {reference_id} of work {quote(work_id)}")

    def find_checks(
        self,
        key: ApiKey,
        *,
        offset: int = 0,
        limit: int = 50,
        decision: str | None = None,
        work_id: str | None = None,
        platform: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> tuple[list[CheckRecord], int]:
        """Checks newest first, by decision, matched work, platform and UTC date range
        (both ends included), within what the key may see (as :meth:`list_checks`)."""
        _page(offset, limit)
        query = select(CheckRow)
        if key.role == Role.PLATFORM:
            if platform not in (None, key.owner):
                return [], 0
            query = query.where(CheckRow.platform == key.owner)
        elif key.role == Role.RIGHTS_HOLDER:
            mine = select(CheckMatchRow.check_id).where(CheckMatchRow.owner == key.owner)
            query = query.where(CheckRow.id.in_(mine))
        else:
            require_role(key, Role.OPERATOR, Role.ADMIN)
        if decision is not None:
            if decision not in {d.value for d in Decision}:
                raise InputError(f"decision must be one of {[d.value for d in Decision]}")
            query = query.where(CheckRow.decision == decision)
        if work_id is not None:
            if key.role == Role.PLATFORM:
                raise Forbidden("platforms search their checks without naming works")
            self._work_for(key, work_id)
            matched = select(CheckMatchRow.check_id).where(CheckMatchRow.work_id == work_id)
            query = query.where(CheckRow.id.in_(matched))
        if platform is not None:
            _text("platform", platform, 200)
            query = query.where(CheckRow.platform == platform)
        if since is not None and until is not None and until < since:
            raise InputError("the end date is before the start date")
        if since is not None:
            query = query.where(
                CheckRow.created_at >= dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
            )
        if until is not None:
            end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            query = query.where(CheckRow.created_at < end)
        with Session(self.engine) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(CheckRow.created_at.desc(), CheckRow.id).offset(offset).limit(limit)
            )
            records = [check_record(r) for r in rows]
        return [v.record for v in self._shown(key, records)], total

    def dashboard(self, key: ApiKey, days: int = 14) -> dict[str, Any]:
        """Checks per decision per day, top matched works, review backlog, index sizes,
        model and policy versions."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        counts = stats.dashboard(self.engine, days)
        screener = self.screener
        return {
            "counts": counts,
            "index_sizes": screener.indexes.sizes(),
            "index_version": screener.index_version(),
            "models": screener.model_specs,
            "signals_missing": dict(screener.signals.missing),
            "policy_version": screener.policy.version,
            "works": screener.catalog.count_works(),
        }

    def preview_policy(self, key: ApiKey, data: bytes | str) -> Any:
        """Validate an uploaded policy and compare it with the one in force; nothing
        changes. Returns a :class:`screener.store.policy_store.PolicyPreview`."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        proposed, text = policy_store.read(data)
        current = self.screener.policy
        problem = policy_store.runtime_problem(current, proposed)
        if problem is not None:
            raise PolicyError(f"the uploaded policy cannot be put into force: {problem}")
        return policy_store.PolicyPreview(
            current, proposed, policy_store.compare(current, proposed), text
        )

    def replace_policy(self, key: ApiKey, data: bytes | str, based_on: str) -> Policy:
        """Put a previewed policy into force. ``based_on`` is the version the operator
        compared it with: if another change came first, this one is refused."""
        preview = self.preview_policy(key, data)
        if preview.current.version != based_on:
            raise Conflict(
                f"the policy in force changed to {preview.current.version!r} since the "
                f"comparison with {based_on!r}: upload it again to compare"
            )
        ensure_tables(self.engine, policy_store.POLICY_TABLES)
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            session.add(
                policy_store.PolicyVersionRow(
                    at=now(),
                    actor=key.id,
                    version=preview.proposed.version,
                    replaced_version=based_on,
                    text=preview.text,
                )
            )
            self.audit.append_in(
                session,
                key.id,
                "policy.replace",
                preview.proposed.version,
                {
                    "replaced": based_on,
                    "changes": [
                        {"path": c.path, "before": c.before, "after": c.after}
                        for c in preview.changes
                    ],
                },
            )
        self.screener.policy = preview.proposed
        proposed: Policy = preview.proposed
        return proposed

    def restore_policy(self) -> Policy | None:
        """At start: the policy last put into force from the console, if the configured
        policy is still the one it replaced (else the configured file is newer and wins)."""
        ensure_tables(self.engine, policy_store.POLICY_TABLES)
        with Session(self.engine) as session:
            latest = session.scalars(
                select(policy_store.PolicyVersionRow)
                .order_by(policy_store.PolicyVersionRow.seq.desc())
                .limit(1)
            ).first()
            if latest is None:
                return None
            stored = latest.text
            chain = set(session.scalars(select(policy_store.PolicyVersionRow.replaced_version)))
        if self.screener.policy.version not in chain:
            return None
        restored, _ = policy_store.read(stored, "the stored policy")
        self.screener.policy = restored
        return restored

    def risk_prompt_of(self, key: ApiKey, check_id: str) -> dict[str, str] | None:
        """The risk prompt the check's end user was shown (None for allow)."""
        from screener.core.replay import verdict_from_dict

        return self._risk_prompt(verdict_from_dict(self.get_check(key, check_id).verdict))
