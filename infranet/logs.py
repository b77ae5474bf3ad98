"""Logging set-up. Secrets never reach the log: httpx logs every request URL and the Bot API
puts the token in the URL; a driver's or our own message may quote a database URL with its
password. So every record passes two filters on the handler (handler filters see the records
of every logger, child loggers' included): the configured secrets are replaced by '***', and
the password of any URL (scheme://user:password@) is masked whether or not it was configured.
Tracebacks are masked as well as messages."""

from __future__ import annotations

import logging
import sys

from infranet.config import Settings, mask_url_passwords


class _Redactor(logging.Filter):
    """Rewrites a record's message and traceback through `redact`; never drops a record."""

    def redact(self, text: str) -> str:
        raise NotImplementedError

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # The formatter keeps a traceback it finds already formatted in exc_text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class RedactSecrets(_Redactor):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class MaskUrlPasswords(_Redactor):
    """scheme://user:password@host becomes scheme://user:***@host in every record."""

    def redact(self, text: str) -> str:
        return mask_url_passwords(text)


def secrets_of(settings: Settings) -> list[str]:
    values = [settings.telegram.token, settings.telegram.webhook_secret, settings.smtp.password,
              settings.security.secret_key]
    found = [v.get_secret_value() for v in values if v is not None]
    from sqlalchemy.engine import make_url

    password = make_url(settings.database.url).password
    if password:
        found.append(str(password))
    return found


def setup_logging(settings: Settings | None = None, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if settings is not None:
        handler.addFilter(RedactSecrets(secrets_of(settings)))
    handler.addFilter(MaskUrlPasswords())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or (settings.service.log_level if settings else "INFO"))
    # Per-request lines of these libraries are noise at INFO.
    for name in ("httpx", "apscheduler.executors.default", "aiosqlite", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
