"""Scheduled reports e-mailed to other departments (``reports.scheduled`` in the centre file).

Every ``interval`` seconds serve looks for each schedule's latest due moment (its days and
time, in the centre's time zone; one missed while serve was down is still sent if it is less
than ``catch_up`` old). A due sending is first stored (``report_sends``, unique per schedule and
moment), then the report is built (XLSX, and a PNG chart for queues and agents), sent through
``[smtp]`` and marked sent. A send that fails (the server refuses or cannot be reached) is
tried again with a growing delay, up to ``max_tries``; one that was sent is never sent again.
The Message-ID is derived from the schedule and the moment, so a mail server or a reader can
drop a copy should a crash fall between the server's acceptance and the mark.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from telephonist.core.centre import Centre, ScheduledReport
from telephonist.core.hours import parse_days, parse_hhmm
from telephonist.core.mail import send as mail_to
from telephonist.core.models import ReportSend
from telephonist.core.settings import SmtpSettings
from telephonist.core.storage import Store
from telephonist.reports import abandoned, agents, fcr, kpi

log = logging.getLogger("telephonist.reports")


def latest_due(sched: ScheduledReport, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The latest moment at or before ``now`` the schedule was due (UTC), within a week.

    >>> s = ScheduledReport(name="r", days="mon-fri", at="18:30", to=("a@b.cd",))
    >>> paris = ZoneInfo("Europe/Paris")
    >>> latest_due(s, datetime(2026, 12, 3, 17, 31, tzinfo=UTC), paris)  # Thu 18:31 Paris
    datetime.datetime(2026, 12, 3, 17, 30, tzinfo=datetime.timezone.utc)
    >>> latest_due(s, datetime(2026, 12, 6, 12, 0, tzinfo=UTC), paris)  # Sunday: Friday's
    datetime.datetime(2026, 12, 4, 17, 30, tzinfo=datetime.timezone.utc)
    """
    days = set(parse_days(sched.days))
    minute = parse_hhmm(sched.at, "at")
    local_now = now.astimezone(zone)
    for back in range(8):
        day = local_now.date() - timedelta(days=back)
        if day.weekday() not in days:
            continue
        due = datetime.combine(day, time(minute // 60, minute % 60), zone)
        if due <= local_now:
            return due.astimezone(UTC)
    return None


def covered(sched: ScheduledReport, due_day: date) -> tuple[date, date]:
    """The days a sending due on ``due_day`` reports on.

    >>> s = ScheduledReport(name="r", covers="last_week", to=("a@b.cd",))
    >>> covered(s, date(2026, 12, 7))  # a Monday: the week before
    (datetime.date(2026, 11, 30), datetime.date(2026, 12, 6))
    >>> covered(s.model_copy(update={"covers": "last_month"}), date(2026, 12, 1))
    (datetime.date(2026, 11, 1), datetime.date(2026, 11, 30))
    """
    if sched.covers == "today":
        return due_day, due_day
    if sched.covers == "yesterday":
        return due_day - timedelta(days=1), due_day - timedelta(days=1)
    if sched.covers == "last_7_days":
        return due_day - timedelta(days=7), due_day - timedelta(days=1)
    if sched.covers == "last_week":
        monday = due_day - timedelta(days=due_day.weekday() + 7)
        return monday, monday + timedelta(days=6)
    first_of_this = due_day.replace(day=1)
    last = first_of_this - timedelta(days=1)
    return last.replace(day=1), last


@dataclass
class Built:
    subject: str
    body: str
    files: list[tuple[str, str, bytes]]
    """(file name, MIME subtype, content)."""


async def build(store: Store, centre: Centre, sched: ScheduledReport, due: datetime) -> Built:
    """The report for the sending due at ``due``: a summary in the body, the figures attached."""
    from telephonist.reports import export  # matplotlib: only when a report is built

    zone = ZoneInfo(centre.timezone)
    first, last = covered(sched, due.astimezone(zone).date())
    span = f"{first}" if first == last else f"{first} to {last}"
    period = kpi.Period(first, last, sched.interval)
    notes = {"report": sched.report, "covers": span, "time zone": centre.timezone}
    subject = f"telephonist {sched.report} report ({sched.name}): {span}"
    files: list[tuple[str, str, bytes]] = []
    lines: list[str] = [f"{sched.report} report for {span} ({centre.timezone})", ""]
    if sched.report == "queues":
        report = await kpi.queues(store, centre, period, only=sched.queues)
        day = kpi.Period(first, last, "total")
        totals = (await kpi.queues(store, centre, day, only=sched.queues))["rows"]
        for r in totals:
            sl = "n/a" if r["service_level"] is None else f"{r['service_level']:.1%}"
            lines.append(
                f"{r['queue']}: offered {r['offered']}, answered {r['answered']}, "
                f"abandoned {r['abandoned']}, service level {sl}, ASA {r['asa']} s"
            )
        lines += ["", report["formula"]]  # fmt: skip
        waits = await kpi.wait_distribution(store, centre, period, only=sched.queues)
        notes["formula"] = report["formula"]
        files.append(
            (
                "queues.xlsx",
                "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                export.xlsx_bytes({"queues": report["rows"], "totals": totals}, notes),
            )
        )
        files.append(("queues.png", "png", export.queues_png(report, waits)))  # fmt: skip
    elif sched.report == "agents":
        rows = await agents.agents(store, centre, kpi.Period(first, last, "total"))
        for r in rows:
            lines.append(f"{r['agent']}: answered {r['answered']}, AHT {r['aht']} s, "
                         f"occupancy {r['occupancy']}")  # fmt: skip
        files.append(
            (
                "agents.xlsx",
                "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                export.xlsx_bytes(
                    {"agents": rows, "by period": await agents.agents(store, centre, period)},
                    notes,
                ),
            )
        )
        states = await agents.timeline(store, centre, last)
        chart = export.agents_png(rows, centre.timezone, states, last.isoformat())
        files.append(("agents.png", "png", chart))
    elif sched.report == "abandoned":
        rows = await abandoned.abandoned(store, centre, period, only=sched.queues)
        lines.append(f"{len(rows)} callers abandoned or were hung up on")
        files.append(("abandoned.xlsx", "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      export.xlsx_bytes({"abandoned": rows}, notes)))  # fmt: skip
    else:
        result = await fcr.fcr(store, centre, period, only=sched.queues)
        share = "n/a" if result["fcr"] is None else f"{result['fcr']:.1%}"
        lines.append(f"first-contact resolution ({result['days']} days): {share}, "
                     f"{result['resolved']} of {result['answered']}")  # fmt: skip
        files.append(
            (
                "fcr.xlsx",
                "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                export.xlsx_bytes({"repeat callers": result["repeat_callers"]}, notes),
            )
        )
    return Built(subject, "\n".join(lines) + "\n", files)


def send(smtp: SmtpSettings, sched: ScheduledReport, due: datetime, built: Built) -> None:
    """Blocking: run in a thread."""
    assert smtp.host
    mail = EmailMessage()
    mail["Subject"] = built.subject
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(sched.to)
    mail["Message-ID"] = f"<report.{sched.name}.{due:%Y%m%dT%H%MZ}@telephonist>"
    mail.set_content(built.body)
    for name, subtype, content in built.files:
        maintype = "image" if subtype == "png" else "application"
        mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    mail_to(smtp, mail)


class ReportMailer:
    def __init__(
        self,
        store: Store,
        centre: Centre,
        smtp: SmtpSettings,
        *,
        interval: float = 30.0,
        catch_up: timedelta = timedelta(hours=12),
        max_tries: int = 10,
    ) -> None:
        self.store, self.centre, self.smtp = store, centre, smtp
        self.zone = ZoneInfo(centre.timezone)
        self.interval, self.catch_up, self.max_tries = interval, catch_up, max_tries

    async def run(self) -> None:
        if self.centre.reports.scheduled and not self.smtp.host:
            log.warning("reports.scheduled is set but [smtp] host is not: nothing is e-mailed")
            await asyncio.Event().wait()
        while True:
            await self.tick()
            await asyncio.sleep(self.interval)

    async def tick(self, now: datetime | None = None) -> int:
        """Send what is due; returns how many were sent."""
        now = now or datetime.now(UTC)
        sent = 0
        for sched in self.centre.reports.scheduled:
            due = latest_due(sched, now, self.zone)
            if due is None or now - due > self.catch_up:
                continue
            row = await self._claim(sched.name, due, now)
            if row is None:
                continue
            try:
                built = await build(self.store, self.centre, sched, due)
                await asyncio.to_thread(send, self.smtp, sched, due, built)
            except (OSError, smtplib.SMTPException) as exc:
                await self._failed(row, now, exc)
                continue
            async with self.store.unit_of_work() as uow:
                stored = await uow.session.get(ReportSend, row)
                assert stored is not None
                stored.state, stored.sent_at, stored.tries = "sent", now, stored.tries + 1
            log.info("report %s due %s sent to %s", sched.name, due, ", ".join(sched.to))
            sent += 1
        return sent

    async def _claim(self, name: str, due: datetime, now: datetime) -> int | None:
        """The id of the sending to try now, or None (sent, given up, or not time yet). The
        sending is stored the first time it is due (a second serve racing loses on the
        unique index and reads the row)."""
        row = await self._sending(name, due)
        if row is None:
            try:
                async with self.store.unit_of_work() as uow:
                    uow.session.add(ReportSend(name=name, due_at=due))
            except IntegrityError:
                pass
            row = await self._sending(name, due)
            assert row is not None
        if row.state != "pending":
            return None
        if row.next_try_at is not None and now < _aware(row.next_try_at):
            return None
        return row.id

    async def _sending(self, name: str, due: datetime) -> ReportSend | None:
        async with self.store.sessions() as s:
            return (
                await s.execute(
                    select(ReportSend)
                    .where(col(ReportSend.name) == name)
                    .where(col(ReportSend.due_at) == due)
                )
            ).scalar_one_or_none()

    async def _failed(self, row_id: int, now: datetime, exc: BaseException) -> None:
        async with self.store.unit_of_work() as uow:
            row = await uow.session.get(ReportSend, row_id)
            assert row is not None
            row.tries += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:200]
            row.next_try_at = now + timedelta(seconds=min(3600, 60 * 2 ** (row.tries - 1)))
            if row.tries >= self.max_tries:
                row.state = "failed"
            tries, name = row.tries, row.name
        log.warning("report %s not sent (try %d of %d): %s", name, tries, self.max_tries, exc)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


__all__ = ["ReportMailer", "build", "covered", "latest_due", "send"]
