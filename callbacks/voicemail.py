"""Voicemail: new messages in app_voicemail's spool are noticed at once, stored, published
(``telephonist/<node>/voicemail/new``), e-mailed if the mailbox has an address, and turned
into a callback task when the caller's number is known.

app_voicemail writes each message as ``<spool>/<context>/<box>/INBOX/msgNNNN.txt`` (its
details: ``callerid``, ``origtime``, ``duration``, ``msg_id``) next to the recording, then
sends AMI ``MessageWaiting``. telephonist scans the mailbox on that event, on every
(re)connect and every ``interval`` seconds (so nothing left while it was down is missed);
``msg_id`` makes each message stored once.
"""

from __future__ import annotations

import asyncio
import configparser
import logging
import re
import smtplib
import wave
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from telephonist.callbacks import tasks
from telephonist.callbacks.events import VOICEMAIL
from telephonist.callbacks.policy import NumberPolicy
from telephonist.core.ami import AmiClient
from telephonist.core.callcontrol import CallControl, Originate
from telephonist.core.centre import Centre, Mailbox
from telephonist.core.mail import send as mail_to
from telephonist.core.models import VoicemailMessage
from telephonist.core.settings import SmtpSettings
from telephonist.core.storage import Store

log = logging.getLogger("telephonist.voicemail")

CONTEXT = "default"
_CALLERID = re.compile(r'^\s*(?:"?(?P<name>[^"<]*?)"?\s*)?<(?P<num>[^>]*)>\s*$')


def parse_message(txt: Path) -> dict[str, str] | None:
    """The ``[message]`` section of a message's .txt file, or None if unreadable."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(txt.read_text(errors="replace"))
    except (OSError, configparser.Error):
        return None
    if not parser.has_section("message"):
        return None
    return dict(parser.items("message"))


def split_callerid(value: str) -> tuple[str, str]:
    """(name, number) from app_voicemail's ``callerid`` field.

    >>> split_callerid('"Jane Doe" <5551234>')
    ('Jane Doe', '5551234')
    >>> split_callerid("Unknown")
    ('', '')
    """
    m = _CALLERID.match(value)
    if m is None:
        return "", ""
    return (m.group("name") or "").strip(), m.group("num").strip()


def audio_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (OSError, wave.Error, EOFError):
        return None


class VoicemailWatcher:
    def __init__(
        self,
        store: Store,
        ami: AmiClient | None,
        centre: Centre,
        spool: Path,
        smtp: SmtpSettings,
        *,
        policy: NumberPolicy,
        interval: float = 30.0,
    ) -> None:
        self.policy = policy
        self.store = store
        self.centre = centre
        self.spool = spool
        self.smtp = smtp
        self.interval = interval
        self.mailboxes = {m.box: m for m in centre.mailboxes}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        if ami is not None:
            ami.on_event("MessageWaiting", self._on_mwi)
            ami.on_connect(self._on_connect)

    async def _on_mwi(self, event: Any) -> None:
        self._wake.set()

    async def _on_connect(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.scan()
            except OSError as exc:
                log.warning("voicemail spool %s not read: %s", self.spool, exc)
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def scan(self) -> list[VoicemailMessage]:
        """Store the messages not stored yet; returns them."""
        async with self._lock:
            found: list[VoicemailMessage] = []
            for box, mailbox in self.mailboxes.items():
                inbox = self.spool / CONTEXT / box / "INBOX"
                if not inbox.is_dir():
                    continue
                async with self.store.sessions() as s:
                    known = set(
                        (
                            await s.execute(
                                select(col(VoicemailMessage.msg_id)).where(
                                    col(VoicemailMessage.mailbox) == box
                                )
                            )
                        ).scalars()
                    )  # one query per mailbox and scan, not one per message
                for txt in sorted(inbox.glob("msg*.txt")):
                    message = await self._store(mailbox, txt, known)
                    if message is not None:
                        found.append(message)
            for message in found:
                await self._email(message)
            return found

    async def _store(self, mailbox: Mailbox, txt: Path, known: set[str]) -> VoicemailMessage | None:
        info = parse_message(txt)
        audio = txt.with_suffix(".wav")
        if info is None or not audio.exists():
            return None  # still being written
        msg_id = (info.get("msg_id") or f"{info.get('origtime', '')}-{txt.stem}")[:80]
        if msg_id in known:
            return None
        async with self.store.unit_of_work() as uow:
            stored = (
                await uow.session.execute(
                    select(col(VoicemailMessage.id))
                    .where(col(VoicemailMessage.mailbox) == mailbox.box)
                    .where(col(VoicemailMessage.msg_id) == msg_id)
                )
            ).first()
            if stored is not None:  # another process stored it meanwhile
                return None
            name, number = split_callerid(info.get("callerid", ""))
            origtime = info.get("origtime", "")
            seconds = audio_seconds(audio)
            message = VoicemailMessage(
                mailbox=mailbox.box,
                msg_id=msg_id,
                caller_number=number[:80],
                caller_name=name[:80],
                received_at=(
                    datetime.fromtimestamp(int(origtime), UTC)
                    if origtime.isdigit()
                    else datetime.now(UTC)
                ),
                duration=round(seconds) if seconds is not None else int(info.get("duration") or 0),
                file=str(audio),
            )
            uow.session.add(message)
            await uow.session.flush()
            queue = mailbox.callback_queue or self.centre.callbacks.queue
            if mailbox.callback and queue and number:
                try:
                    cb, _created = await tasks.missed(
                        uow,
                        policy=self.policy,
                        number=number,
                        queue=queue,
                        source="voicemail",
                        window=self.centre.callbacks.missed.window,
                        delay=0,
                        note=f"voicemail {mailbox.box} #{message.id}",
                    )
                    message.callback_id = cb.id
                except tasks.CallbackError as exc:
                    log.info("voicemail %s: no callback (%s)", message.id, exc)
            VOICEMAIL(uow, "new", _payload(message))
        log.info("voicemail %s in %s from %r (%ss)", message.id, mailbox.box, number,
                 message.duration)  # fmt: skip
        return message

    async def _email(self, message: VoicemailMessage) -> None:
        mailbox = self.mailboxes.get(message.mailbox)
        if mailbox is None or not mailbox.email or not self.smtp.host:
            return
        error = ""
        try:
            await asyncio.to_thread(send_notice, self.smtp, mailbox, message)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("voicemail %s: e-mail to %s failed: %s", message.id, mailbox.email, error)
        async with self.store.unit_of_work() as uow:
            row = await uow.session.get(VoicemailMessage, message.id)
            if row is not None:
                if error:
                    row.email_error = error
                else:
                    row.emailed_at = datetime.now(UTC)
                    VOICEMAIL(uow, "emailed", {"voicemail_id": row.id, "to": mailbox.email})


def send_notice(smtp: SmtpSettings, mailbox: Mailbox, message: VoicemailMessage) -> None:
    """E-mail a new-message notice (blocking: run in a thread)."""
    assert smtp.host and mailbox.email
    mail = EmailMessage()
    who = message.caller_number or "an unknown number"
    mail["Subject"] = f"New voicemail in {mailbox.name or mailbox.box} from {who}"
    mail["From"] = smtp.sender
    mail["To"] = mailbox.email
    mail.set_content(
        f"Mailbox: {mailbox.box} {mailbox.name}\n"
        f"From: {message.caller_name} {message.caller_number}\n"
        f"Received: {message.received_at.isoformat()}\n"
        f"Duration: {message.duration} s\n"
        f"Message id: {message.id}\n"
        + (f"Callback task: {message.callback_id}\n" if message.callback_id else "")
    )
    audio = Path(message.file)
    if mailbox.attach and audio.exists():
        mail.add_attachment(
            audio.read_bytes(),
            maintype="audio",
            subtype="wav",
            filename=f"message-{message.id}.wav",
        )
    mail_to(smtp, mail)


def _payload(m: VoicemailMessage) -> dict[str, Any]:
    return {
        "voicemail_id": m.id,
        "mailbox": m.mailbox,
        "caller_number": m.caller_number,
        "caller_name": m.caller_name,
        "received_at": m.received_at,
        "duration": m.duration,
        "callback_id": m.callback_id,
    }


def sandbox_spool(rootfs: Path, instance: str) -> Path:
    return rootfs / "var/lib/telephonist" / instance / "spool" / "voicemail"


def inside_path(host_path: Path, rootfs: Path | None) -> Path:
    """A recording's path as Asterisk sees it: inside the sandbox's chroot (``rootfs``), or
    as it is (an external Asterisk, ``rootfs`` None).

    >>> inside_path(Path("/c/rootfs-sid/var/lib/x/msg0000.wav"), Path("/c/rootfs-sid"))
    PosixPath('/var/lib/x/msg0000.wav')
    >>> inside_path(Path("/var/spool/asterisk/msg0000.wav"), None)
    PosixPath('/var/spool/asterisk/msg0000.wav')
    """
    if rootfs is None:
        return host_path
    try:
        return Path("/") / host_path.relative_to(rootfs)
    except ValueError:
        return host_path


async def play_message(
    control: CallControl, message: VoicemailMessage, extension: str, rootfs: Path | None
) -> None:
    """Ring ``extension``; when answered, it hears the message (``voicemail play --on``)."""
    recording = inside_path(Path(message.file), rootfs)
    await control.originate(
        Originate(
            channel=f"PJSIP/{extension}",
            application="Playback",
            data=str(recording.with_suffix("")),
            caller_id=f"Voicemail <{message.mailbox}>",
            timeout=30,
        )
    )


class VoicemailError(ValueError):
    """A voicemail request that cannot be done; the message says why."""


async def mark_done(store: Store, message_id: int) -> VoicemailMessage:
    """A message has been dealt with (``voicemail done``): it stays stored; ``voicemail/done``."""
    async with store.unit_of_work() as uow:
        row = await uow.session.get(VoicemailMessage, message_id)
        if row is None:
            raise VoicemailError(f"no voicemail message {message_id}")
        row.state = "done"
        VOICEMAIL(uow, "done", {"voicemail_id": row.id, "mailbox": row.mailbox})
        return row
