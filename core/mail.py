"""Sending e-mail through the centre's ``[smtp]`` (voicemail notices, scheduled reports)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from telephonist.core.settings import SmtpSettings


def send(smtp: SmtpSettings, mail: EmailMessage) -> None:
    """Blocking (run it in a thread): STARTTLS and login when configured; OSError or
    SMTPException when the server cannot be reached or refuses."""
    assert smtp.host
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.username and smtp.password is not None:
            client.login(smtp.username, smtp.password.get_secret_value())
        client.send_message(mail)
