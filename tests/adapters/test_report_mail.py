"""Scheduled reports arrive at a real SMTP server on loopback (aiosmtpd): the XLSX attachment
opens and holds the figures; with the server down the sending is retried and arrives once."""

from __future__ import annotations

import email
import io
import socket
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import openpyxl
from aiosmtpd.controller import Controller
from sqlalchemy import select

from telephonist.core.centre import Centre
from telephonist.core.models import ReportSend
from telephonist.core.settings import SmtpSettings
from telephonist.core.storage import Store
from telephonist.reports.mail import ReportMailer
from tests.adapters.test_reports import CENTRE, ingest

SCHEDULED = Centre.model_validate(
    {
        **CENTRE.model_dump(exclude={"reports"}),
        "reports": {
            "scheduled": [
                {"name": "evening", "report": "queues", "days": "mon-fri", "at": "18:30",
                 "covers": "today", "interval": "60", "to": ["ops@example.test"]},
            ]
        },
    }
)  # fmt: skip


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_scheduled_report_is_retried_and_arrives_once(store: Store, tmp_path: Path) -> None:
    await ingest(store, tmp_path)
    port = free_port()
    smtp = SmtpSettings(host="127.0.0.1", port=port, sender="centre@example.test", timeout=5)
    mailer = ReportMailer(store, SCHEDULED, smtp)
    # Thursday 2026-12-03, 18:31 in Paris: the evening report of the day is due.
    now = datetime(2026, 12, 3, 17, 31, tzinfo=UTC)
    assert await mailer.tick(now - timedelta(minutes=2)) == 0  # 18:29: not yet
    # The mail server is down: nothing sent, the sending stored and to be tried again.
    assert await mailer.tick(now) == 0
    async with store.sessions() as s:
        (row,) = (await s.execute(select(ReportSend))).scalars()
    assert (row.state, row.tries) == ("pending", 1) and "Connection refused" in row.last_error
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        assert await mailer.tick(now + timedelta(seconds=30)) == 0  # the retry's time is not yet
        assert await mailer.tick(now + timedelta(minutes=2)) == 1
        assert await mailer.tick(now + timedelta(minutes=3)) == 0  # sent: never again
        assert await mailer.tick(now + timedelta(hours=5)) == 0
    finally:
        server.stop()
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail["To"] == "ops@example.test" and "2026-12-03" in mail["Subject"]
    assert mail["Message-ID"] == "<report.evening.20261203T1730Z@telephonist>"
    parts = {p.get_filename(): p for p in mail.walk() if p.get_filename()}
    assert set(parts) == {"queues.xlsx", "queues.png"}
    body = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    text = body.get_payload(decode=True)
    assert isinstance(text, bytes)
    assert "support: offered 7, answered 2, abandoned 1, service level 50.0%" in text.decode()
    attached = parts["queues.xlsx"].get_payload(decode=True)
    assert isinstance(attached, bytes)
    workbook = openpyxl.load_workbook(io.BytesIO(attached))
    cells = list(workbook["totals"].iter_rows(values_only=True))
    support = dict(zip(cells[0], next(r for r in cells[1:] if r[0] == "support"), strict=True))
    assert (support["offered"], support["answered"], support["service_level"]) == (7, 2, 0.5)
    hourly = list(workbook["queues"].iter_rows(values_only=True))
    assert [r[1] for r in hourly[1:] if r[0] == "support"] == [
        "2026-12-03 09:00", "2026-12-03 10:00"]  # fmt: skip
    async with store.sessions() as s:
        (row,) = (await s.execute(select(ReportSend))).scalars()
    assert (row.state, row.tries) == ("sent", 2)


async def test_a_report_missed_while_serve_was_down_is_sent_late_but_not_days_later(
    store: Store,
) -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=free_port())
    mailer = ReportMailer(store, SCHEDULED, smtp, catch_up=timedelta(hours=12))
    # Saturday noon: Friday's 18:30 sending is 17.5 hours old: past the catch-up, not sent.
    assert await mailer.tick(datetime(2026, 12, 5, 11, 0, tzinfo=UTC)) == 0
    async with store.sessions() as s:
        assert (await s.execute(select(ReportSend))).first() is None
