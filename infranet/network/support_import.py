"""The register's CSV import: the shared spreadsheet the network kept before the register,
as Excel saves it ("Nazwa organizacji;KRS;NIP;Powiat;Usługa;Data", `;`, UTF-8 with a BOM
or Windows-1250; `infranet/csvtext.py` reads it as every import does).

Each row goes through the register's own rules (`support.py`): a row that breaks one is
refused with its line and the reason, the others are saved; a row whose client another
organisation supported with the same service within the window is saved with that warning
reported (and counted as "saved anyway"). One transaction, a savepoint per row, so a
refused row leaves nothing behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.context import AppContext
from infranet.csvtext import CsvFileError, decode, fold_header, read_rows
from infranet.errors import InfranetError
from infranet.i18n import LANGUAGES, t
from infranet.network.orgs import SERVICES, find_organisation
from infranet.network.support import SupportInput, add_support, check_support, earlier_support
from infranet.region import UnknownDistrict, fold
from infranet.storage.actors import Actor

MAX_ROWS = 50_000

# Header spellings (folded by csvtext.fold_header) -> the input's fields.
_HEADERS: dict[str, str] = {
    "nazwaorganizacji": "name", "nazwa": "name", "organizacja": "name", "nazwaklienta": "name",
    "klient": "name", "organizacjawspierana": "name", "wspieranaorganizacja": "name",
    "name": "name", "client": "name", "clientname": "name", "organisation": "name",
    "organization": "name",
    "krs": "krs", "nrkrs": "krs", "numerkrs": "krs",
    "nip": "nip", "nrnip": "nip", "numernip": "nip",
    "powiat": "district", "district": "district", "county": "district",
    "usluga": "service", "uslugi": "service", "rodzajwsparcia": "service", "wsparcie": "service",
    "service": "service", "rodzajuslugi": "service",
    "data": "date", "date": "date", "datawsparcia": "date", "kiedy": "date",
    "rodzaj": "kind", "rodzajklienta": "kind", "typ": "kind", "kind": "kind",
    "organizacjawspierajaca": "org", "wspierajacy": "org", "udzielil": "org",
    "supportedby": "org", "member": "org",
}
_KINDS = {"ngo": "ngo", "organizacja": "ngo", "organizacjapozarzadowa": "ngo", "fundacja": "ngo",
          "stowarzyszenie": "ngo", "group": "group", "grupa": "group", "grupanieformalna": "group",
          "informalgroup": "group", "person": "person", "osoba": "person",
          "osobaprywatna": "person", "osobafizyczna": "person", "privateperson": "person"}
_DATE = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


@dataclass
class SupportImportReport:
    rows: int = 0
    added: int = 0
    warned: list[str] = field(default_factory=list)  # "line N: client — earlier by ORG (date)"
    refused: list[str] = field(default_factory=list)  # "line N: reason"
    notes: list[str] = field(default_factory=list)


def service_code(value: str) -> str:
    """A service as a spreadsheet names it ("szkolenia", "Doradztwo prawne", "training"),
    as its code; the text unchanged when it is none of them (the rules then refuse it)."""
    folded = fold(value)
    if not folded:
        return ""
    for code in SERVICES:
        names = {fold(code), *(fold(t(lang, f"org.service.{code}")) for lang in LANGUAGES)}
        if folded in names:
            return code
    if len(folded) >= 5:  # a shortened or inflected name: "szkolenie", "doradztwo praw"
        stem = folded[:-1] if len(folded) >= 6 else folded
        matches = {code for code in SERVICES for lang in LANGUAGES
                   if fold(t(lang, f"org.service.{code}")).startswith(stem)}
        if len(matches) == 1:
            return matches.pop()
    return value.strip()


def parse_day(value: str) -> date | None:
    """`5.11.2026`, `05.11.2026`, `5/11/2026`, `2026-11-05` (Excel's ways); None if empty.
    ValueError says what is wrong."""
    text = value.strip()
    if not text:
        return None
    first = text.split(" ")[0].split("T")[0]  # Excel may add a time: "20.11.2026 00:00"
    found = _DATE.match(first)
    if found:
        day, month, year = (int(g) for g in found.groups())
    else:
        found = _ISO.match(first)
        if not found:
            raise ValueError(f"date {text!r} is not a date like 05.11.2026 or 2026-11-05")
        year, month, day = (int(g) for g in found.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"date {text!r} does not exist") from None


def _columns(header: list[str]) -> tuple[list[str | None], list[str]]:
    columns = [_HEADERS.get(fold_header(name)) for name in header]
    found = set(columns)
    missing = [what for what, need in (("name", "Nazwa organizacji"), ("district", "Powiat"),
                                       ("service", "Usługa"), ("date", "Data"))
               if what not in found]
    if missing:
        raise CsvFileError("line 1: missing columns: " + ", ".join(
            need for what, need in (("name", "Nazwa organizacji"), ("district", "Powiat"),
                                    ("service", "Usługa"), ("date", "Data")) if what in missing)
            + "; the header must name at least 'Nazwa organizacji;KRS;NIP;Powiat;Usługa;Data'")
    ignored = [h.strip() for h, c in zip(header, columns, strict=True) if c is None and h.strip()]
    return columns, ([f"columns ignored: {', '.join(ignored)}"] if ignored else [])


def _reason(exc: Exception) -> str:
    if isinstance(exc, InfranetError):
        return exc.localized("en")
    return str(exc)


async def import_support(session: AsyncSession, ctx: AppContext, actor: Actor, data: bytes, *,
                         organisation: str | None = None,
                         progress: Callable[[int, int], None] | None = None) -> SupportImportReport:
    """Import a file's rows as support given by `organisation` (id or name; a column
    "Organizacja wspierająca" may name another per row). Raises CsvFileError when the
    file as a whole cannot be read."""
    text, _encoding, notes = decode(data)
    rows, _sep = read_rows(text)
    columns, more = _columns(rows[0])
    report = SupportImportReport(notes=[*notes, *more])
    body = rows[1:]
    if len(body) > MAX_ROWS:
        raise CsvFileError(f"the file has {len(body)} rows; import at most {MAX_ROWS} at a time")
    default_org = (await find_organisation(session, organisation)).id if organisation else None
    if default_org is None and "org" not in columns and actor.organisation_id is None:
        raise CsvFileError("name the organisation that gave the support: --org ORG, or a column "
                           "'Organizacja wspierająca'")
    orgs: dict[str, int] = {}
    for index, row in enumerate(body, start=2):
        cells: dict[str, str] = {}
        for column, value in zip(columns, row, strict=False):
            if column is not None and column not in cells:
                cells[column] = value.strip()
        if not any(cells.values()):
            continue  # an empty line keeps its number and is no record
        report.rows += 1
        try:
            async with session.begin_nested():
                await _one(session, ctx, actor, cells, default_org, orgs, report, index)
        except (InfranetError, UnknownDistrict, ValueError) as exc:
            report.refused.append(f"line {index}: {_reason(exc)}")
        if progress is not None:
            progress(index - 1, len(body))
    return report


async def _one(session: AsyncSession, ctx: AppContext, actor: Actor, cells: dict[str, str],
               default_org: int | None, orgs: dict[str, int], report: SupportImportReport,
               line: int) -> None:
    org_id = default_org
    if cells.get("org"):
        name = cells["org"]
        if name not in orgs:
            orgs[name] = (await find_organisation(session, name)).id
        org_id = orgs[name]
    kind = _KINDS.get(fold_header(cells.get("kind", ""))) if cells.get("kind") else None
    if cells.get("kind") and kind is None:
        raise ValueError(f"kind {cells['kind']!r}: write 'organizacja' or 'grupa nieformalna'")
    given_on = parse_day(cells.get("date", ""))
    if given_on is None:
        raise ValueError("no date: write the day the support was given, e.g. 05.11.2026")
    data = SupportInput(client_name=cells.get("name"), krs=cells.get("krs") or None,
                        nip=cells.get("nip") or None, service=service_code(cells.get("service", "")),
                        district=cells.get("district", ""), given_on=given_on, client_kind=kind,
                        organisation_id=org_id, source="import")
    draft = await check_support(session, ctx, actor, data)
    found = await earlier_support(session, ctx, draft)
    await add_support(session, ctx, actor, data, warned=bool(found))
    report.added += 1
    if found:
        others = ", ".join(f"{d.organisation} ({d.at.astimezone(ctx.tz).date():%d.%m.%Y})"
                           for d in found)
        report.warned.append(f"line {line}: {draft.client_name} ({draft.service}): "
                             f"also supported by {others}")
