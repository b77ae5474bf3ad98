"""Logging set-up. Secrets never reach the log: httpx logs every request URL,
and the Bot API puts the token in the URL, so every record is redacted."""

from __future__ import annotations

import logging
import sys

from infranet.config import Settings


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or (settings.service.log_level if settings else "INFO"))
    # Per-request lines of these libraries are noise at INFO.
    for name in ("httpx", "apscheduler.executors.default", "aiosqlite", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
