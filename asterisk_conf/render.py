"""Render the Asterisk configuration from the Jinja2 templates.

Templates live in ``asterisk_conf/templates/<file>.conf.j2``. A telephony engineer can replace
any of them by putting a file of the same name in ``templates_override_dir``. Undefined
variables are errors (StrictUndefined), and every error names the template and line.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import traceback
from dataclasses import dataclass
from pathlib import Path

import jinja2

from telephonist.core.centre import Centre, Queue
from telephonist.core.destinations import Destination
from telephonist.core.hours import OpeningHours
from telephonist.core.settings import Settings

TEMPLATE_DIR = Path(__file__).parent / "templates"
CONFIG_FILES = tuple(sorted(p.name.removesuffix(".j2") for p in TEMPLATE_DIR.glob("*.conf.j2")))


class RenderError(Exception):
    """A template could not be rendered: the message names the template file and line."""


@dataclass(frozen=True)
class AsteriskPaths:
    """Directories as Asterisk sees them (inside the chroot for the sandbox)."""

    etc: str
    modules: str = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
    lib: str = "/var/lib/asterisk"
    spool: str = "/var/spool/asterisk"
    run: str = "/var/run/asterisk"
    log: str = "/var/log/asterisk"
    cache: str = "/var/cache/asterisk"

    @classmethod
    def sandbox(cls, instance: str, modules: str) -> AsteriskPaths:
        base = f"/var/lib/telephonist/{instance}"
        return cls(
            etc=f"/etc/telephonist/{instance}",
            modules=modules,
            lib=f"{base}/lib",
            spool=f"{base}/spool",
            run=f"{base}/run",
            log=f"{base}/log",
            cache=f"{base}/cache",
        )


def _environment(override_dir: Path | None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        if not override_dir.is_dir():
            raise RenderError(f"templates_override_dir {override_dir}: not a folder")
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATE_DIR)))
    # An override can extend the shipped file instead of copying it:
    #   {% include "shipped/extensions.conf.j2" %}  then its own contexts.
    loaders.append(jinja2.PrefixLoader({"shipped": jinja2.FileSystemLoader(str(TEMPLATE_DIR))}))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def mailbox_pin(secret: str, box: str) -> str:
    """A 6-digit voicemail PIN derived from the installation's secret (never a default)."""
    digest = hmac.new(secret.encode(), f"mailbox:{box}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def agent_password(secret: str, extension: str) -> str:
    """The SIP password of an agent's phone, derived from the installation's secret
    (``telephonist agent password ID`` prints it for provisioning the phone)."""
    return hmac.new(secret.encode(), f"agent:{extension}".encode(), hashlib.sha256).hexdigest()[:24]


def host_port(address: str, port: int) -> str:
    """``address:port`` as SIP writes it (an IPv6 address in brackets).

    >>> host_port("127.0.0.2", 5060), host_port("::1", 5060)
    ('127.0.0.2:5060', '[::1]:5060')
    """
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def contact_address(contact: str) -> str | None:
    """The IP address of a fixed SIP contact, as an ACL entry; None for a host name.

    >>> contact_address("sip:127.0.0.1:25509"), contact_address("sip:2001@10.0.0.7;transport=udp")
    ('127.0.0.1/255.255.255.255', '10.0.0.7/255.255.255.255')
    >>> contact_address("sip:[2001:db8::1]:5060"), contact_address("sip:phone.example")
    ('2001:db8::1/128', None)
    """
    rest = contact.split(":", 1)[1] if contact.lower().startswith(("sip:", "sips:")) else contact
    rest = rest.split(";", 1)[0].rsplit("@", 1)[-1]
    host = rest[1 : rest.find("]")] if rest.startswith("[") else rest.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return f"{address}/{'255.255.255.255' if address.version == 4 else 128}"


@dataclass(frozen=True)
class FallbackHours:
    """A queue's opening hours as the dialplan fallback checks them."""

    timezone: str
    ranges: list[tuple[int, str, str]] | None
    """(ISO weekday 1-7, HHMM start, HHMM end) while open; None: always open."""
    holidays: list[str]
    """Closed dates, YYYY-MM-DD."""


def fallback_hours(queue: Queue, default_tz: str = "UTC") -> FallbackHours:
    """>>> q = Queue(name="s", hours={"mon-tue": "08:00-18:00"}, timezone="Europe/Paris")
    >>> fallback_hours(q).ranges
    [(1, '0800', '1800'), (2, '0800', '1800')]
    """
    ranges = None if queue.hours is None else OpeningHours.parse(queue.hours).day_ranges()
    return FallbackHours(
        timezone=queue.timezone or default_tz,
        ranges=ranges,
        holidays=[d.isoformat() for d in queue.holidays],
    )


def _template_line(exc: BaseException) -> tuple[str, int] | None:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(".j2") and frame.lineno is not None:
            return frame.filename, frame.lineno
    return None


def render_all(settings: Settings, centre: Centre, paths: AsteriskPaths) -> dict[str, str]:
    """Render every template; returns ``{file name: text}``. Raises :class:`RenderError`."""
    env = _environment(settings.templates_override_dir)
    context = {
        "settings": settings,
        "centre": centre,
        "paths": paths,
        "bind_address": settings.pbx.bind_address,
        "sip_address": settings.pbx.sip_address,
        "ami_address": settings.pbx.ami_address,
        "ari_address": settings.pbx.ari_address,
        "host_port": host_port,
        "secrets": {
            "ami": settings.ami_secret,
            "ari": settings.ari_secret,
            "crm": settings.crm_ami_secret,
        },
        "mailbox_pin": lambda box: mailbox_pin(settings.ami_secret, box),
        "agent_password": lambda ext: agent_password(settings.ami_secret, ext),
        "fallback_hours": fallback_hours,
        "contact_address": contact_address,
        "destination": Destination.parse,
    }
    out: dict[str, str] = {}
    for name in CONFIG_FILES:
        try:
            template = env.get_template(name + ".j2")
            out[name] = template.render(context)
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or name + ".j2"
            raise RenderError(
                f"{where}:{exc.lineno}: template syntax error: {exc.message}"
            ) from None
        except jinja2.UndefinedError as exc:
            loc = _template_line(exc)
            where = f"{loc[0]}:{loc[1]}" if loc else name + ".j2"
            raise RenderError(f"{where}: {exc.message}") from None
    return out


def write_config(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write rendered files into ``out_dir`` atomically (each file replaced whole)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o640)
        tmp.replace(path)
        written.append(path)
    return written
