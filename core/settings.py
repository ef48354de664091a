"""One typed settings object, read once at start-up.

Precedence, lowest first: built-in defaults, the TOML config file, ``TELEPHONIST_*``
environment variables (nested keys with ``__``, e.g. ``TELEPHONIST_PBX__AMI_PORT=15038``),
then explicit keyword overrides (tests use these).

Secrets are never defaults: a secret left empty is generated once (alphanumeric, because a
``&`` or ``#`` breaks the ARI event websocket) and kept in ``<data_dir>/secrets.toml``
with mode 0600, so the rendered Asterisk config and the clients always agree.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import tempfile
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from telephonist.core.numbers import check_region
from telephonist.core.yamlfile import DefinitionError, read_definition

ENV_PREFIX = "TELEPHONIST_"
CONFIG_ENV = "TELEPHONIST_CONFIG"
_config_file: ContextVar[Path | None] = ContextVar("telephonist_config_file", default=None)


class SettingsError(Exception):
    """A bad setting: the message names the key and where it came from."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


Port = Field(ge=1, le=65535)


class PbxSettings(_Section):
    mode: Literal["sandbox", "external"] = "sandbox"
    """``sandbox``: telephonist builds and runs its own Asterisk under chroot.
    ``external``: connect to an existing Asterisk at ``host`` with the given ports/credentials."""
    instance: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    host: str = "127.0.0.1"
    """Where telephonist reaches Asterisk."""
    bind_address: str = "127.0.0.1"
    """Where the rendered Asterisk listens unless one of the three below says otherwise.
    Loopback unless you must."""
    sip_bind_address: str | None = None
    """SIP's own address (e.g. the one phones and trunks reach); AMI and ARI stay on theirs."""
    ami_bind_address: str | None = None
    """AMI's own address (empty: ``bind_address``)."""
    ari_bind_address: str | None = None
    """ARI's own address, Asterisk's HTTP server (empty: ``bind_address``)."""
    manager_permit: str = "127.0.0.1/255.255.255.255"
    """The networks allowed to log in to AMI (``addr/mask``, several with commas)."""
    ari_permit: str = "127.0.0.1/255.255.255.255"
    """The networks allowed to reach ARI (``addr/mask``, several with commas)."""
    ami_port: int = Field(default=15038, ge=1, le=65535)
    ari_port: int = Field(default=18088, ge=1, le=65535)
    sip_port: int = Field(default=15060, ge=1, le=65535)
    rtp_start: int = Field(default=30000, ge=1024, le=65535)
    rtp_end: int = Field(default=30999, ge=1024, le=65535)
    ami_user: str = Field(default="telephonist", pattern=r"^[A-Za-z0-9_-]+$")
    ami_secret: SecretStr | None = None
    crm_ami_user: str = Field(default="crm", pattern=r"^[A-Za-z0-9_-]+$")
    """An AMI login for CRMs: it may only send and read UserEvents (dispositions)."""
    crm_ami_secret: SecretStr | None = None
    ari_user: str = Field(default="telephonist", pattern=r"^[A-Za-z0-9_-]+$")
    ari_secret: SecretStr | None = None
    stasis_app: str = Field(default="telephonist", pattern=r"^[A-Za-z0-9_-]+$")
    cache_dir: Path = Path("/var/cache/telephonist")
    """Where the sandbox root filesystem is built once and reused (outside the repository)."""
    queue_log: Path | None = None
    """External mode: Asterisk's queue_log file, to ingest it (sandbox: found by itself)."""
    cel_log: Path | None = None
    """External mode: the file cel_custom.conf writes channel events to (``cel.json`` in
    Asterisk's log folder), to ingest the true call records (sandbox: found by itself)."""
    voicemail_spool: Path | None = None
    """External mode: app_voicemail's spool (``.../spool/asterisk/voicemail``), where new
    messages are read from (sandbox: found by itself)."""
    verbose: int = Field(default=1, ge=0, le=10)
    """Asterisk's verbosity (3 shows every dialplan step in full.log; costs CPU under load)."""
    sounds_dir: Path | None = None
    """External mode: the Asterisk sounds folder for your language, to check prompt names."""
    boot_timeout: float = Field(default=90.0, gt=0)
    debian_suite: str = "sid"

    @field_validator("bind_address", "sip_bind_address", "ami_bind_address", "ari_bind_address")
    @classmethod
    def _an_address(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError("must be an IP address (Asterisk binds to addresses)") from None
        return v

    @field_validator("manager_permit", "ari_permit")
    @classmethod
    def _networks(cls, v: str) -> str:
        for part in v.split(","):
            try:
                ipaddress.ip_network(part.strip().replace("/255.255.255.255", "/32"), strict=False)
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not addr/mask") from None
        return v

    @property
    def sip_address(self) -> str:
        return self.sip_bind_address or self.bind_address

    @property
    def ami_address(self) -> str:
        return self.ami_bind_address or self.bind_address

    @property
    def ari_address(self) -> str:
        return self.ari_bind_address or self.bind_address

    run_user: str = Field(default="asterisk", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    """The system user (and group) Asterisk runs as: it starts as root, then drops to this
    user before loading any module. The sandbox uses its root filesystem's own ``asterisk``."""


class StorageSettings(_Section):
    url: str | None = None
    """SQLAlchemy URL. Empty: a SQLite file ``<data_dir>/telephonist.db``. PostgreSQL:
    ``postgresql+asyncpg://user@host/db``."""

    retention_outbox_days: int = Field(default=7, ge=0, le=3650)
    """Events already delivered to MQTT are deleted after this many days (0: kept)."""
    retention_ivr_steps_days: int = Field(default=90, ge=0, le=3650)
    """IVR steps (each digit, prompt, route of each call) are deleted after this (0: kept)."""
    retention_queue_log_days: int = Field(default=400, ge=0, le=3650)
    """Ingested queue_log lines are deleted after this (0: kept). Reports read them: keep
    at least the period they cover (a year and a month by default)."""

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    node: str = Field(default_factory=lambda: _safe_topic_word(socket.gethostname()))
    """The ``<node>`` in ``telephonist/<node>/<domain>/<event>``."""
    topic_prefix: str = "telephonist"
    qos: Literal[0, 1, 2] = 1

    @field_validator("node", "topic_prefix")
    @classmethod
    def _topic_word(cls, v: str) -> str:
        if not v or any(c in v for c in "/+#") or not v.isprintable():
            raise ValueError("must be one MQTT topic level (no '/', '+' or '#')")
        return v


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    """Where serve's HTTP endpoint listens (loopback unless you must)."""
    port: int = Field(default=18080, ge=1, le=65535)
    token: SecretStr | None = None
    """The key every route but ``/healthz`` and ``/metrics`` (from loopback) needs, sent as
    ``Authorization: Bearer <token>``. Empty: generated once into secrets.toml
    (``http_token``); the CLI reads it from there."""
    allowed_hosts: list[str] = Field(default_factory=list)
    """Names a request's ``Host`` header may carry besides ``localhost``, the loopback
    addresses and ``host`` itself (e.g. the name a reverse proxy forwards). Any other is
    refused: a web page cannot reach the endpoint through DNS rebinding."""

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not name or any(c in name for c in "/ @:") or not name.isprintable():
                raise ValueError(f"{name!r} is not a host name (no port, scheme or path)")
        return [name.lower() for name in v]


class AgiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=14573, ge=1, le=65535)
    read_timeout: float = Field(default=10.0, gt=0)
    """A FastAGI client that sends nothing for this long is disconnected."""
    session_limit: float = Field(default=60.0, gt=0)
    """No FastAGI session lasts longer than this, whatever its client does (seconds)."""
    max_connections: int = Field(default=100, ge=1, le=10_000)
    """Connections beyond this many at once are closed at once (counted as refused)."""
    permit: list[str] = Field(default_factory=list)
    """Addresses FastAGI accepts besides the PBX's own (``pbx.host``); any other peer is
    closed before it is read."""


class SmtpSettings(_Section):
    """Where voicemail notices are e-mailed from (empty host: no e-mail)."""

    host: str | None = None
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "telephonist@localhost"
    timeout: float = Field(default=10.0, gt=0)


class AmdSettings(_Section):
    """Answering-machine detection (app_amd), rendered into ``amd.conf``; milliseconds. A
    greeting longer than ``greeting``, more than ``maximum_number_of_words`` words, or
    ``initial_silence`` before anything is said make a MACHINE; a short word followed by
    ``after_greeting_silence`` makes a HUMAN; no decision within ``total_analysis_time`` is
    NOTSURE (such calls go to an agent: never hang up on a person)."""

    initial_silence: int = Field(default=2500, ge=500, le=10000)
    greeting: int = Field(default=1500, ge=500, le=10000)
    after_greeting_silence: int = Field(default=800, ge=100, le=5000)
    total_analysis_time: int = Field(default=5000, ge=1000, le=10000)
    min_word_length: int = Field(default=100, ge=10, le=1000)
    between_words_silence: int = Field(default=50, ge=10, le=1000)
    maximum_number_of_words: int = Field(default=2, ge=1, le=10)
    maximum_word_length: int = Field(default=5000, ge=500, le=10000)
    silence_threshold: int = Field(default=256, ge=1, le=32767)
    """Below this average level (0-32767) a sample is silence."""


class DialerSettings(_Section):
    amd: AmdSettings = Field(default_factory=AmdSettings)
    caller_id: str = Field(default="", max_length=30)
    """The number campaigns present to the people they call when ``campaign create`` names
    none (``--caller-id``): a valid number they can call back (checked when a campaign is
    created)."""
    region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    """The country of numbers written without a country code (contact lists, DNC, callers'
    numbers judged for callbacks)."""

    @field_validator("region")
    @classmethod
    def _known_region(cls, v: str) -> str:
        return check_region(v, "a region")


class Settings(BaseSettings):
    """Everything telephonist reads at start-up. See README, "Settings reference"."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Path("var")
    """Database, generated secrets, rendered config and logs live here."""
    centre_file: Path | None = None
    """The centre's definitions (entry lines, later queues, agents, menus). Empty: the demo."""
    templates_override_dir: Path | None = None
    """A folder whose ``*.conf.j2`` files replace the shipped templates of the same name."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    pbx: PbxSettings = Field(default_factory=PbxSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    agi: AgiSettings = Field(default_factory=AgiSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    dialer: DialerSettings = Field(default_factory=DialerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # -- derived values -------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return self.storage.url or f"sqlite+aiosqlite:///{self.data_dir / 'telephonist.db'}"

    @property
    def ami_secret(self) -> str:
        assert self.pbx.ami_secret is not None, "load_settings() fills secrets"
        return self.pbx.ami_secret.get_secret_value()

    @property
    def crm_ami_secret(self) -> str:
        assert self.pbx.crm_ami_secret is not None, "load_settings() fills secrets"
        return self.pbx.crm_ami_secret.get_secret_value()

    @property
    def ari_secret(self) -> str:
        assert self.pbx.ari_secret is not None, "load_settings() fills secrets"
        return self.pbx.ari_secret.get_secret_value()

    @property
    def http_token(self) -> str:
        assert self.http.token is not None, "load_settings() fills secrets"
        return self.http.token.get_secret_value()

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets replaced by ``'********'`` (and the
        password inside ``storage.url``)."""
        data = _mask(self.model_dump(mode="json"))
        if data["storage"].get("url"):
            data["storage"]["url"] = mask_url(data["storage"]["url"])
        return data


def _safe_topic_word(name: str) -> str:
    word = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return word or "node"


def _mask(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            k: (
                "********"
                if v is not None and ("secret" in k or "password" in k or k == "token")
                else _mask(v)
            )
            for k, v in data.items()
        }
    return data


def _env_key_to_path(key: str) -> str:
    return key[len(ENV_PREFIX) :].lower().replace("__", ".")


def _check_env_keys(environ: dict[str, str]) -> None:
    """pydantic-settings ignores unknown variables; a typo must not pass silently."""
    for key in environ:
        if not key.startswith(ENV_PREFIX) or key == CONFIG_ENV:
            continue
        parts = _env_key_to_path(key).split(".")
        model: type[BaseModel] = Settings
        for i, part in enumerate(parts):
            field = model.model_fields.get(part)
            if field is None:
                raise SettingsError(f"environment variable {key}: unknown setting '{part}'")
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                model = ann
            elif i != len(parts) - 1:
                raise SettingsError(f"environment variable {key}: '{part}' has no sub-keys")


def _format_errors(err: ValidationError, config_file: Path | None) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        env = ENV_PREFIX + key.upper().replace(".", "__")
        where = f"{config_file} or ${env}" if config_file else f"${env}"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        lines.append(f"setting '{key}' ({where}): {msg}; got {e.get('input')!r}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def ensure_private_dir(path: Path) -> None:
    """Create the data folder readable by its owner only (0700): it holds callers' numbers
    and the secrets. An existing one is made private too."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def mask_url(url: str) -> str:
    """A database URL fit to print: its password hidden.

    >>> mask_url("postgresql+asyncpg://tel:s3cret@db.example/tel")
    'postgresql+asyncpg://tel:***@db.example/tel'
    """
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: print nothing of it
        return "(unreadable URL)"


_SECRETS = {
    "ami_secret": ("pbx", "ami_secret"),
    "ari_secret": ("pbx", "ari_secret"),
    "crm_ami_secret": ("pbx", "crm_ami_secret"),
    "http_token": ("http", "token"),
}
"""Each generated secret: its name in secrets.toml -> (settings section, field)."""


def _ensure_secrets(settings: Settings) -> Settings:
    """Fill empty secrets from ``<data_dir>/secrets.toml``, generating them the first time."""
    needed = {
        name: getattr(getattr(settings, section), field)
        for name, (section, field) in _SECRETS.items()
    }
    if settings.data_dir.exists():
        ensure_private_dir(settings.data_dir)
    if all(v is not None for v in needed.values()):
        return settings
    path = settings.data_dir / "secrets.toml"
    stored: dict[str, str] = {}
    if path.exists() or path.is_symlink():
        try:  # never through a symbolic link planted in the data folder
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise SettingsError(f"{path}: cannot be read safely ({exc.strerror})") from None
        with os.fdopen(fd) as fh:
            stored = {k: str(v) for k, v in tomllib.loads(fh.read()).items()}
    changed = False
    for name, value in needed.items():
        if value is None and name not in stored:
            stored[name] = secrets.token_hex(16)  # alphanumeric on purpose (ARI websocket)
            changed = True
    if changed:
        ensure_private_dir(settings.data_dir)
        # A new file of our own (O_EXCL: not one somebody prepared), 0600, then renamed.
        fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=settings.data_dir)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Generated by telephonist; the sandbox config and clients read these.\n")
            for k, v in sorted(stored.items()):
                fh.write(f'{k} = "{v}"\n')
        os.replace(tmp, path)
    sections: dict[str, dict[str, SecretStr]] = {}
    for name, value in needed.items():
        if value is None:
            section, field = _SECRETS[name]
            sections.setdefault(section, {})[field] = SecretStr(stored[name])
    return settings.model_copy(
        update={
            section: getattr(settings, section).model_copy(update=fields)
            for section, fields in sections.items()
        }
    )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the settings: defaults, then ``config_file`` (or ``$TELEPHONIST_CONFIG``), then
    the environment, then ``overrides``. Raises :class:`SettingsError` naming the bad key."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = os.environ[CONFIG_ENV]
    path = Path(config_file) if config_file is not None else None
    if path is not None:
        if not path.is_file():
            raise SettingsError(f"config file {path}: not found")
        try:
            tomllib.loads(read_definition(path, 256 * 1024))
        except DefinitionError as exc:
            raise SettingsError(f"config file {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: not valid TOML: {exc}") from None
    _check_env_keys(dict(os.environ))
    token = _config_file.set(path)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_format_errors(exc, path)) from None
    finally:
        _config_file.reset(token)
    base = path.parent if path is not None else Path.cwd()
    updates: dict[str, Any] = {"data_dir": _absolute(settings.data_dir, base)}
    if settings.centre_file is not None:
        updates["centre_file"] = _absolute(settings.centre_file, base)
    if settings.templates_override_dir is not None:
        updates["templates_override_dir"] = _absolute(settings.templates_override_dir, base)
    settings = settings.model_copy(update=updates)
    if settings.pbx.rtp_end <= settings.pbx.rtp_start:
        raise SettingsError("setting 'pbx.rtp_end': must be greater than pbx.rtp_start")
    return _ensure_secrets(settings)


def _absolute(p: Path, base: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()
