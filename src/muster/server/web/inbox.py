"""The approvals inbox: every pending approval request, with what the viewer may do about it.

One data source, :func:`inbox`, feeds the inbox page, the dashboard and the
badge in the navigation. It reads the approval book of
:class:`muster.services.approvals.Approvals` (no logic of its own about who
may vote: :meth:`ApprovalRequest.is_eligible` decides) and describes each
request's subject through :data:`SUBJECTS`, a table from the subject's prefix
(``execution:`` today) to a function that names it and links to it. Other
kinds of approval (workflow steps) join by adding one entry there; a request
whose subject no entry knows still shows, with its raw subject.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from muster.domain.approvals import ApprovalRequest, ApprovalStatus
from muster.errors import NotFoundError
from muster.security.rbac import Permission, Principal
from muster.server.context import ServerContext
from muster.store.approval_store import ApprovalRecord

__all__ = ["SUBJECTS", "InboxItem", "Subject", "inbox", "waiting_count"]

#: How many pending requests one inbox read looks at.
LIMIT: Final = 500


@dataclass(frozen=True, slots=True)
class Subject:
    """What a request is about, for people: a title and where to look at it."""

    title: str
    link: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One pending request as the viewer sees it."""

    record: ApprovalRecord
    subject: Subject
    #: The viewer may vote on it now (eligible, not the requester, not voted yet).
    mine: bool
    #: Why the viewer cannot vote, when they cannot.
    why_not: str | None

    @property
    def request(self) -> ApprovalRequest:
        return self.record.request

    @property
    def progress(self) -> str:
        """``"1 of 2"``: approvals given of approvals needed."""
        r = self.record.request
        return f"{len(r.approvals)} of {r.required}"


def _execution(ctx: ServerContext, rec: ApprovalRecord) -> Subject:
    execution_id = rec.execution_id or rec.request.subject.partition(":")[2]
    link = f"/executions/{execution_id}"
    try:
        header = ctx.store.execution_header(execution_id)
    except NotFoundError:
        return Subject(f"execution {execution_id[:8]} (deleted)")
    what = header.command or header.kind.value
    if header.script_id:
        try:
            what = f"{ctx.store.get_script(header.script_id).name} v{header.script_version}"
        except NotFoundError:
            what = f"script {header.script_id[:8]}"
    hosts = sum(header.counts.values())
    return Subject(f"{what} on {hosts} host{'' if hosts == 1 else 's'}", link)


#: Subject prefix (before ``:``) -> how to describe it. Extend for new kinds of approval.
SUBJECTS: dict[str, Callable[[ServerContext, ApprovalRecord], Subject]] = {
    "execution": _execution,
}


def _why_not(request: ApprovalRequest, who: Principal | None, now: dt.datetime) -> str | None:
    if who is None:
        return "log in to vote"
    if not who.can(Permission.APPROVALS_DECIDE):
        return "you may not decide approvals (approvals.decide)"
    if request.deadline is not None and request.deadline <= now:
        return "the deadline has passed"
    if who.name == request.requester:
        return "you asked for it (you may withdraw it)"
    if request.has_voted(who.name):
        return "you have voted"
    roles = who.roles if who.token_role is None else (who.token_role,)
    if not request.is_eligible(who.name, roles):
        return "you are not one of its approvers"
    return None


def _pending(ctx: ServerContext, *, settle: bool) -> list[ApprovalRecord]:
    if settle:
        # The service passes due deadlines into rejection first, as the API's list does.
        page = ctx.approvals.page(status=ApprovalStatus.PENDING, limit=LIMIT)
    else:
        page = ctx.approvals.book.list_approvals(status=ApprovalStatus.PENDING, limit=LIMIT)
    return list(page.items)


def inbox(ctx: ServerContext, who: Principal | None) -> list[InboxItem]:
    """Pending requests, the viewer's own first, then by deadline (soonest first)."""
    now = ctx.approvals.clock()
    items: list[InboxItem] = []
    for rec in _pending(ctx, settle=True):
        describe = SUBJECTS.get(rec.request.subject.partition(":")[0])
        subject = describe(ctx, rec) if describe else Subject(rec.request.subject)
        why = _why_not(rec.request, who, now)
        items.append(InboxItem(rec, subject, why is None, why))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    items.sort(key=lambda i: (not i.mine, i.request.deadline or far, i.request.created_at))
    return items


def waiting_count(ctx: ServerContext, who: Principal | None) -> int:
    """How many pending requests the viewer may vote on now (the navigation's badge).

    Read without settling deadlines (a page view writes nothing); a request past
    its deadline is not counted.
    """
    if who is None or not who.can(Permission.APPROVALS_DECIDE):
        return 0
    now = ctx.approvals.clock()
    return sum(1 for rec in _pending(ctx, settle=False) if _why_not(rec.request, who, now) is None)
