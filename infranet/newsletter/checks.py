"""Pre-send checks: refuse or warn on what would hurt delivery.

Errors stop an issue from being built and sent; warnings are shown to the
admin (CLI output, bot, log) and sending goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from infranet.context import AppContext
from infranet.newsletter.mime import split_from

HTML_LIMIT = 100 * 1024  # Gmail clips messages whose HTML is over about 102 KB
SERVICE_PATHS = ("/newsletter", "/calendar", "/healthz", "/ics", "/feeds")
_URL = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"')]+")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104 - a name, not a bind


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, other: CheckReport) -> None:
        for e in other.errors:
            if e not in self.errors:
                self.errors.append(e)
        for w in other.warnings:
            if w not in self.warnings:
                self.warnings.append(w)


def check_sender(ctx: AppContext) -> CheckReport:
    report = CheckReport()
    smtp = ctx.settings.smtp
    _, address = split_from(smtp.from_address)
    domain = address.rpartition("@")[2].lower() if "@" in address else ""
    if not domain or "." not in domain or domain in _LOCAL_HOSTS:
        problem = (f"[smtp] from_address {smtp.from_address!r} has no real domain: receiving "
                   "servers reject or junk such mail; set an address of a domain you may send for")
        # Into the local outbox it is harmless; to a real server it is fatal.
        (report.errors if smtp.host else report.warnings).append(problem)
    if not smtp.reply_to:
        report.warnings.append("[smtp] reply_to is not set: replies go to the From address")
    return report


def check_message(ctx: AppContext, text: str | None, html: str | None) -> CheckReport:
    report = CheckReport()
    if not text or not text.strip():
        report.errors.append("the message has no plain-text part")
    if html is not None:
        size = len(html.encode("utf-8"))
        if size > HTML_LIMIT:
            report.errors.append(f"the HTML part is {size // 1024} KB; Gmail clips messages over "
                                 f"about 102 KB: shorten the issue (limit {HTML_LIMIT // 1024} KB)")
    base = ctx.settings.http.public_base_url
    base_host = urlsplit(base).hostname
    urls = set(_URL.findall(html or "")) | set(_TEXT_URL.findall(text or ""))
    bad = sorted(u for u in urls if _bad_service_link(u, base, base_host))
    if bad:
        report.errors.append("links to the service do not use [http] public_base_url "
                             f"({base}): {', '.join(bad[:5])}")
    return report


def _bad_service_link(url: str, base: str, base_host: str | None) -> bool:
    if url.startswith(("mailto:", "#", "@@")):
        return False
    if url.startswith(base + "/") or url == base:
        return False
    parts = urlsplit(url)
    if not parts.scheme:  # relative: breaks in every mail client
        return True
    host = parts.hostname or ""
    if host in _LOCAL_HOSTS and host != base_host:
        return True
    return host == base_host and not url.startswith(base)
