"""The desk: every duty a caller of the service may ask for, who may ask, and the audit
record each leaves.

The HTTP service is a thin skin over this class: it authenticates a key, then calls
one method here. Every rule about roles and owners lives in the desk, so it is tested
without HTTP, and a caller who may not see an object gets the same :class:`NotFound` as
for an object that does not exist.

The duties live one concept to a module, each a class of methods over the shared state of
:class:`~screener.duties.base.DeskBase`: checks, works, notices, review, admin, labelling
and console. :class:`Desk` puts them together; notices, review and console build on
checks (they read checks and their evidence).
"""

from __future__ import annotations

from screener.duties.admin import AdminDuties
from screener.duties.base import MAX_PAGE, MAX_TEXT, WORK_ROLES, Upload
from screener.duties.checks import MAX_PICTURES, CheckDuties, CheckOutcome, PromptOutcome
from screener.duties.console import ConsoleDuties
from screener.duties.labelling import LabelDuties
from screener.duties.notices import MAX_NAMED_CHECKS, NoticeDuties
from screener.duties.review import ReviewDuties
from screener.duties.works import Origin, WorkDuties, WorkView
from screener.matching.pipeline import Screener

__all__ = [
    "MAX_NAMED_CHECKS",
    "MAX_PAGE",
    "MAX_PICTURES",
    "MAX_TEXT",
    "WORK_ROLES",
    "CheckDuties",
    "CheckOutcome",
    "Desk",
    "Origin",
    "PromptOutcome",
    "Upload",
    "WorkView",
]


class Desk(NoticeDuties, ReviewDuties, ConsoleDuties, WorkDuties, AdminDuties, LabelDuties):
    """Checks, works, notices, review, audit, keys and labels, each behind its role."""

    def __init__(self, screener: Screener) -> None:
        super().__init__(screener)
        self.restore_policy()  # one put into force from the console before a restart
