"""Dispositions: what the agent says a dialer call came to (sale, callback, dnc...).

Set three ways, all through :func:`set_disposition`:

- ``telephonist disposition set ATTEMPT CODE`` (an admin, a script);
- the agent's phone: after the call, key ``*7`` and a digit (the centre's ``dispositions``,
  by default 1 sale, 2 callback, 3 not-interested, 4 wrong-number, 9 dnc); the FastAGI route
  ``disposition`` finds the agent's latest dialer call (``agi_handlers/disposition.py``);
- AMI, from a CRM: ``Action: UserEvent`` / ``UserEvent: TelephonistDisposition`` with
  ``Attempt: <id>`` and ``Code: <code>`` (the dialer in ``serve`` applies it).

Some codes act: ``callback`` dials the lead again after the campaign's callback delay (an hour
if it has none), ``dnc`` puts the number on the do-not-call list and closes the lead.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from telephonist.core.models import Campaign, CampaignLead, DialAttempt, DncEntry
from telephonist.core.storage import UnitOfWork
from telephonist.dialer.events import DIALER

CODE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
CALLBACK_DEFAULT = timedelta(hours=1)


class DispositionError(ValueError):
    pass


def check_code(code: str, field: str = "CODE") -> str:
    """
    >>> check_code("not-interested")
    'not-interested'
    >>> check_code("Exten => s,1,Dial(x)")
    Traceback (most recent call last):
    ...
    telephonist.dialer.dispositions.DispositionError: CODE: 'Exten => s,1,Dial(x)' is not a disposition code (a-z, 0-9, _ -)
    """  # noqa: E501
    if not CODE.fullmatch(code):
        raise DispositionError(f"{field}: {code!r} is not a disposition code (a-z, 0-9, _ -)")
    return code


async def set_disposition(
    uow: UnitOfWork, attempt_id: int, code: str, by: str, now: datetime | None = None
) -> CampaignLead:
    """Record ``code`` on the attempt's lead and act on it; returns the lead."""
    check_code(code)
    now = now or datetime.now(UTC)
    attempt = await uow.session.get(DialAttempt, attempt_id)
    if attempt is None:
        raise DispositionError(f"no dial attempt {attempt_id}")
    lead = await uow.session.get(CampaignLead, attempt.lead_id)
    campaign = await uow.session.get(Campaign, attempt.campaign_id)
    if lead is None or campaign is None:
        raise DispositionError(f"dial attempt {attempt_id} has no lead")
    lead.disposition = code
    if code == "callback":
        delays = json.loads(campaign.retry) if campaign.retry else {}
        delay = int(delays.get("callback", 0))
        wait = timedelta(seconds=delay) if delay > 0 else CALLBACK_DEFAULT
        lead.state, lead.next_at = "retry", now + wait
    elif code == "dnc":
        lead.state = "dnc"
        known = (
            await uow.session.execute(
                select(DncEntry).where(col(DncEntry.number) == attempt.number)
            )
        ).scalar_one_or_none()
        if known is None:
            uow.session.add(DncEntry(number=attempt.number, source=f"disposition by {by}"[:200]))
    DIALER(uow, "disposition",
        {"attempt_id": attempt_id, "lead_id": lead.id, "code": code, "by": by,
         "lead_state": lead.state},
    )  # fmt: skip
    return lead


async def latest_attempt_of(
    uow: UnitOfWork, names: tuple[str, ...], within: timedelta, now: datetime | None = None
) -> DialAttempt | None:
    """The agent's latest dialer call connected to them within ``within`` (the queue_log
    names the agent by member name, preview calls by agent id: ``names`` has both)."""
    now = now or datetime.now(UTC)
    return (
        await uow.session.execute(
            select(DialAttempt)
            .where(col(DialAttempt.agent).in_(names))
            .where(col(DialAttempt.connected_at).is_not(None))
            .where(col(DialAttempt.connected_at) >= now - within)
            .order_by(col(DialAttempt.connected_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
