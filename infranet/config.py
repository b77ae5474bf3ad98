"""Configuration: a TOML file, overridden key by key from the environment.

pydantic-settings is used because it gives us, for free, typed sections with
`extra="forbid"` (a typo in a key is an error, not a silently ignored value),
`SecretStr` (secrets are masked whenever the settings are printed or logged)
and `INFRANET_<SECTION>__<KEY>` environment overrides with deep merging.

One module over 400 lines on purpose: it is the one reference of every setting an
operator may write, section after section in the order of `config.example.toml`;
split by section it would no longer read as that reference.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "INFRANET_"
DEFAULT_CONFIG_NAME = "config.toml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class RegionSettings(Section):
    name: str = "województwo warmińsko-mazurskie"
    timezone: str = "Europe/Warsaw"
    country: str = "PL"
    districts_file: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as 'Europe/Warsaw')") from exc
        return value

    @property
    def tz(self) -> tzinfo:
        return ZoneInfo(self.timezone)


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///data/infranet.db"
    migrate_on_start: bool = True
    echo: bool = False
    pool_size: int = Field(default=5, ge=1)

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with 'sqlite+aiosqlite://' or 'postgresql+asyncpg://'"
            )
        return value


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or
    # networks); the client address of every other connection is its own peer address.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    # Slow or hostile clients (infranet/http_protocol.py): a request head (request line and
    # headers) must arrive whole within header_timeout_s and max_header_bytes, an idle
    # keep-alive connection is closed after keep_alive_timeout_s, and beyond max_connections
    # open connections new requests are answered 503.
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_header_bytes: int = Field(default=65536, ge=4096, le=1048576)
    keep_alive_timeout_s: int = Field(default=5, ge=1, le=300)
    max_connections: int = Field(default=1000, ge=1)

    @field_validator("public_base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http:// or https:// URL")
        return value.rstrip("/")


class TelegramSettings(Section):
    token: SecretStr | None = None
    base_url: str | None = None
    mode: Literal["polling", "webhook"] = "polling"
    webhook_secret: SecretStr | None = None
    webhook_path: str = "/telegram/webhook"
    admin_ids: list[int] = Field(default_factory=list)
    commands_per_minute: int = Field(default=20, ge=1)
    conversation_timeout_s: int = Field(default=900, ge=30)
    max_retries: int = Field(default=5, ge=0)


class SmtpSettings(Section):
    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["none", "starttls", "implicit"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = "Infranet <newsletter@localhost>"
    reply_to: str | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=100)
    max_rate: float = Field(default=0.0, ge=0)
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: Path | None = None
    validate_certs: bool = True
    retry_base_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)


class NewsletterSettings(Section):
    schedule: str = "0 8 * * mon"
    horizon_days: int = Field(default=14, ge=1, le=366)
    language: Literal["pl", "en"] = "pl"
    skip_empty: bool = True
    template_dir: Path | None = None
    title: str = "Newsletter sieci organizacji infrastrukturalnych"
    list_id: str | None = None
    confirm_ttl_days: int = Field(default=7, ge=1)
    max_hard_bounces: int = Field(default=3, ge=1)
    # A scheduled time missed while the service was down is caught up at start when it
    # is at most this many hours old (0: never); logged either way.
    catch_up_hours: float = Field(default=12, ge=0, le=24 * 31)
    # An issue pauses when more than this share of its first `pause_sample` deliveries are
    # refused with a 5xx (policy, DMARC, unknown addresses...); 1 = never pause.
    pause_failure_share: float = Field(default=0.2, gt=0, le=1)
    pause_sample: int = Field(default=50, ge=1)
    # How often the running service looks for pending deliveries it did not start (built
    # by the CLI in another process, waiting for a retry), seconds.
    poll_seconds: float = Field(default=30, ge=0.1, le=600)
    # Admins are told of an SMTP outage once connections have failed this long (seconds).
    outage_alert_after_s: float = Field(default=60, ge=0)
    # The privacy notice (RODO art. 13) of the sign-up form, the confirmation page,
    # /newsletter/privacy and every e-mail's footer; unset = the shipped Polish and English
    # defaults. Contact defaults to [smtp] reply_to, else from_address.
    privacy_controller: str | None = None
    privacy_contact: str | None = None
    privacy_purpose: str | None = None
    privacy_legal_basis: str | None = None
    privacy_retention: str | None = None
    privacy_rights: str | None = None
    unsubscribe_address: str | None = None
    # Abuse limits on subscription requests (infranet/newsletter/limits.py).
    confirm_cooldown_minutes: int = Field(default=10, ge=0)
    confirm_daily_max: int = Field(default=3, ge=1)
    form_burst: int = Field(default=10, ge=1)
    form_per_minute: float = Field(default=2.0, ge=0)


class BounceSettings(Section):
    """The mailbox where bounces (RFC 3464), complaints (RFC 5965) and mailto: unsubscribe
    requests arrive, read over IMAP (infranet/newsletter/bounces.py). No host: not read,
    and the envelope sender of newsletter mail stays the From address (no VERP)."""

    host: str | None = None
    port: int = Field(default=993, ge=1, le=65535)
    tls: Literal["none", "starttls", "ssl"] = "ssl"
    user: str | None = None
    password: SecretStr | None = None
    validate_certs: bool = True
    folder: str = Field(default="INBOX", min_length=1)
    done_folder: str = Field(default="Processed", min_length=1)
    # Messages that match no delivery and are no unsubscribe request; "" leaves them in
    # `folder` (flagged, so they are not read again).
    unmatched_folder: str = "Unmatched"
    poll_interval_s: float = Field(default=300.0, ge=5, le=86400)
    batch_size: int = Field(default=100, ge=1, le=1000)
    # Local part of the VERP envelope sender: <verp_local_part>+<delivery>-<mac>@<domain>.
    verp_local_part: str = Field(default="bounces", pattern=r"^[A-Za-z0-9._-]{1,40}$")
    timeout_s: float = Field(default=60.0, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    @model_validator(mode="after")
    def _folders_differ(self) -> BounceSettings:
        # Moving mail into the folder it is read from would read it again forever.
        for name in ("done_folder", "unmatched_folder"):
            if getattr(self, name) == self.folder:
                raise ValueError(f"{name} must differ from folder ({self.folder!r})")
        return self


class SecuritySettings(Section):
    secret_key: SecretStr | None = None


class ConflictSettings(Section):
    scope: Literal["powiat", "subregion", "region"] = "region"
    audience_sensitive: bool = True


class CalendarSettings(Section):
    moderation: Literal["none", "new_members", "all"] = "none"
    suggestion_window_days: int = Field(default=28, ge=1, le=366)
    max_years_ahead: int = Field(default=2, ge=1, le=10)
    feed_past_days: int = Field(default=90, ge=0)
    cancelled_keep_days: int = Field(default=30, ge=0)
    feed_refresh_minutes: int = Field(default=60, ge=5)
    # Memory for rendered feeds (whole bodies, gzip bodies, per-event VEVENTs), MiB.
    feed_cache_mb: int = Field(default=64, ge=1, le=65536)
    conflicts: ConflictSettings = Field(default_factory=ConflictSettings)


class SourcesSettings(Section):
    """Members' own calendars followed by URL (infranet.calendar.sources)."""

    # Each source is fetched this often when it works; errors back off (doubling, up to a day).
    interval_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Fetch from loopback and private addresses too (tests, a closed network); metadata
    # addresses such as 169.254.169.254 stay refused.
    allow_private: bool = False


class ReferralSettings(Section):
    retention_days: int = Field(default=180, ge=1)
    duplicate_window_days: int = Field(default=183, ge=1)


class NetworkSettings(Section):
    # The organisation an admin without one posts for: made at set-up, shown by this name.
    secretariat_name: str = Field(default="Sekretariat sieci", min_length=1, max_length=200)


class InsightSettings(Section):
    # A powiat is a white spot for an indicator when its figure per 10,000 residents is
    # below this share of the regional median (and for a service when nobody offers it).
    white_spot_share: float = Field(default=0.5, gt=0, le=1)


class ServiceSettings(Section):
    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_timeout_s: float = Field(default=5.0, gt=0)


class Settings(BaseSettings):
    """The effective configuration of one service process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    region: RegionSettings = Field(default_factory=RegionSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    newsletter: NewsletterSettings = Field(default_factory=NewsletterSettings)
    bounces: BounceSettings = Field(default_factory=BounceSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    sources: SourcesSettings = Field(default_factory=SourcesSettings)
    referrals: ReferralSettings = Field(default_factory=ReferralSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    insight: InsightSettings = Field(default_factory=InsightSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, which arrives as init kwargs.
        return (env_settings, init_settings)

    @property
    def tz(self) -> tzinfo:
        return self.region.tz


class ConfigError(Exception):
    """A configuration problem, worded for the person who edits the file."""


DEFAULTS_ENV = "INFRANET_DEFAULTS"


@dataclass(frozen=True)
class EnvOverride:
    """An environment variable that replaced a value a config file gave. Reported (key and
    variable, never the value) because an image's or a shell's leftover variable otherwise
    wins silently over the file an operator edited."""

    key: str  # dotted, e.g. "database.url"
    variable: str  # e.g. "INFRANET_DATABASE__URL"
    file: Path

    def message(self) -> str:
        return f"config key {self.key}: ${self.variable} overrides the value in {self.file}"


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    source: Path | None  # None: no file found, defaults (and environment) only
    # $INFRANET_DEFAULTS: deployment defaults under the config file (the container image's)
    defaults_source: Path | None = None
    env_overrides: tuple[EnvOverride, ...] = ()


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """`--config PATH`, else `$INFRANET_CONFIG`, else `./config.toml`, else none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    from_env = os.environ.get("INFRANET_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"config file {path} (from $INFRANET_CONFIG) does not exist")
        return path
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        # The message already ends with "(at line L, column C)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def load_settings(
    explicit: str | os.PathLike[str] | None = None, **overrides: Any
) -> LoadedConfig:
    """Find, read and validate the configuration; raise ConfigError on any problem.

    Precedence, lowest first: built-in defaults, the deployment defaults file named by
    $INFRANET_DEFAULTS (the image ships one), the config file, the environment. Every
    environment variable that replaces a value of either file is listed in `env_overrides`."""
    defaults_path = _defaults_file()
    path = find_config_file(explicit)
    layers = [(p, read_toml(p)) for p in (defaults_path, path) if p is not None]
    data: dict[str, Any] = {}
    for _, layer in layers:
        _deep_merge(data, layer)
    for key, value in overrides.items():
        data.setdefault(key, {}).update(value)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path or defaults_path)) from None
    return LoadedConfig(settings=settings, source=path, defaults_source=defaults_path,
                        env_overrides=_env_overrides(layers))


def _defaults_file() -> Path | None:
    named = os.environ.get(DEFAULTS_ENV)
    if not named:
        return None
    path = Path(named)
    if not path.is_file():
        raise ConfigError(f"defaults file {path} (from ${DEFAULTS_ENV}) does not exist")
    return path


def _deep_merge(into: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _leaf_keys(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    for key, value in data.items():
        path = (*prefix, str(key).lower())
        keys |= _leaf_keys(value, path) if isinstance(value, dict) and value else {path}
    return keys


def _env_overrides(layers: list[tuple[Path, dict[str, Any]]]) -> tuple[EnvOverride, ...]:
    """The file keys the environment replaces, read through pydantic-settings' own
    environment source so that what is reported is exactly what it applies."""
    from pydantic_settings import EnvSettingsSource

    from_env = _leaf_keys(EnvSettingsSource(Settings)())
    found: dict[tuple[str, ...], EnvOverride] = {}
    for file, layer in layers:  # the later file (the config file) names the value replaced
        for key in _leaf_keys(layer):
            hit = next((e for e in from_env if e[:len(key)] == key or key[:len(e)] == e), None)
            if hit is not None:
                env_key = min(hit, key, key=len)
                found[key] = EnvOverride(".".join(key), ENV_PREFIX + "__".join(env_key).upper(), file)
    return tuple(found[k] for k in sorted(found))


def format_validation_error(exc: ValidationError, path: Path | None) -> str:
    where = str(path) if path else "the environment/defaults"
    lines = [f"invalid configuration ({where}):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        env_name = ENV_PREFIX + "__".join(str(p) for p in error["loc"]).upper()
        if error["type"] == "extra_forbidden":
            lines.append(f"  unknown key '{key}' in {where} (or ${env_name}); check its spelling")
            continue
        value = error.get("input")
        shown = "***" if _is_secret_key(key) else mask_url_passwords(repr(value))
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {key} = {shown}: {message}")
    return "\n".join(lines)


def _is_secret_key(key: str) -> bool:
    return any(word in key for word in ("token", "password", "secret"))


# scheme://user:password@ -- the password runs to the first "@" (as SQLAlchemy's URL parser
# reads it), so one with "/" or ":" in it is masked whole; text that merely looks like this
# is masked too, which costs a little readability and never a secret.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/?#@]*):[^\s@]*@")


def mask_url_passwords(text: str) -> str:
    """`text` with the password of every URL in it (scheme://user:password@host) shown as ***."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by '***': fields typed
    as secrets, and the password of any URL (database, a Bot API or proxy URL with user info)."""

    def mask(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "***" if value.get_secret_value() else ""
        if isinstance(value, str):
            return mask_url_passwords(value)
        if isinstance(value, dict):
            return {k: mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return mask(settings.model_dump())
