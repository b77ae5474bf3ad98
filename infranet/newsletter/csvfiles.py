"""Reading subscriber files as the secretariat actually has them.

Polish Excel saves "CSV" with `;` between columns (the comma is the decimal sign),
in Windows-1250 unless "CSV UTF-8" is chosen, and then with a byte-order mark; its
headers are whatever someone typed ("E-mail", "adres e-mail", "Język"). This module
turns such a file into the canonical comma-separated text with the column names the
import understands (`email`, `language`, `districts`, `categories`; lists inside a
cell separated by `;`), keeping one output row per input line so that an error's
line number is the line the person sees in their editor. The reading rules common to
every import (encoding, delimiter, header folding) are in `infranet/csvtext.py`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

# Shared with the other imports (infranet/csvtext.py); CsvFileError and decode are
# re-exported for this module's callers.
from infranet.csvtext import CsvFileError, decode, delimiter, fold_header

# Header spellings seen in real exports, compared after folding case, accents,
# spaces, dashes and underscores ("Adres e-mail" -> "adresemail").
_HEADER_ALIASES: dict[str, str] = {
    "email": "email", "mail": "email", "emailaddress": "email", "adresemail": "email",
    "adresmailowy": "email", "adres": "email", "poczta": "email", "poczta_email": "email",
    "language": "language", "lang": "language", "jezyk": "language",
    "districts": "districts", "district": "districts", "powiat": "districts",
    "powiaty": "districts",
    "categories": "categories", "category": "categories", "kategoria": "categories",
    "kategorie": "categories",
}


@dataclass
class SubscriberFile:
    """The canonical text for the import, and notes for the person who ran it."""

    text: str
    encoding: str
    delimiter: str
    notes: list[str] = field(default_factory=list)


def canonical_header(name: str) -> str | None:
    """The import's column name for a header as typed, or None when it is not one of ours."""
    return _HEADER_ALIASES.get(fold_header(name))


def read_subscriber_file(data: bytes) -> SubscriberFile:
    """The file's rows as canonical CSV text for `import_csv`; raises CsvFileError."""
    text, encoding, notes = decode(data)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CsvFileError("line 1: the first row must name the columns and include an e-mail "
                           "column ('email', 'E-mail' or 'adres e-mail')")
    sep = delimiter(lines[0])
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=sep))
    header = rows[0]
    columns = [canonical_header(name) for name in header]
    if "email" not in columns:
        raise CsvFileError(f"line 1: no e-mail column among {', '.join(h.strip() for h in header)}; "
                           "name it 'email', 'E-mail' or 'adres e-mail'")
    ignored = [h.strip() for h, c in zip(header, columns, strict=True) if c is None and h.strip()]
    if ignored:
        notes.append(f"columns ignored: {', '.join(ignored)}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    wanted = [c for c in dict.fromkeys(columns) if c is not None]
    writer.writerow(wanted)
    body = rows[1:]
    while body and not any(cell.strip() for cell in body[-1]):
        body.pop()  # Excel's trailing ";;;" rows
    for row in body:
        cells: dict[str, str] = {}
        for column, value in zip(columns, row, strict=False):
            if column is not None and column not in cells:
                cells[column] = value.strip()
        # A row with no text still holds its place (a blank cell), so later lines keep their numbers.
        writer.writerow([cells.get(c, "") for c in wanted])
    return SubscriberFile(text=out.getvalue(), encoding=encoding, delimiter=sep, notes=notes)
