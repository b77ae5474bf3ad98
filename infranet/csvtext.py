"""Reading the CSV files offices actually have, for every component's import.

Polish Excel saves "CSV" with `;` between columns (the comma is the decimal sign), in
Windows-1250 unless "CSV UTF-8" is chosen, and then with a byte-order mark; its headers
are whatever someone typed ("E-mail", "adres e-mail", "Nazwa organizacji"). These rules
were the newsletter's (`newsletter/csvfiles.py`, which uses them) and are shared so that
the network's import of support records reads files the same way.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata


class CsvFileError(ValueError):
    """The file cannot be read; the message says what to change."""


def fold_header(name: str) -> str:
    """A header as typed, compared after folding case, accents, spaces, dashes and
    underscores ("Adres e-mail" -> "adresemail", "Usługa" -> "usluga")."""
    decomposed = unicodedata.normalize("NFKD", name.strip().lower().replace("ł", "l"))
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\s\-_.]+", "", letters)


def decode(data: bytes) -> tuple[str, str, list[str]]:
    """Text, encoding name and notes. UTF-8 (with or without a BOM) first: a file that is
    not valid UTF-8 and has bytes above 127 is, for a Polish office, Windows-1250
    (Excel's "CSV (rozdzielany przecinkami)"), which decodes every byte but 5 unused ones."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig", []
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1250")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise CsvFileError(f"line {line}: the file is neither UTF-8 nor Windows-1250; save it "
                           "from Excel as 'CSV UTF-8'") from None
    return text, "cp1250", ["read as Windows-1250 (the file is not UTF-8); "
                            "save it as 'CSV UTF-8' to avoid this guess"]


def delimiter(header_line: str) -> str:
    """`;` when the header has more of them than commas (Polish Excel), else `,`."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def read_rows(text: str) -> tuple[list[list[str]], str]:
    """All rows (header first) and the delimiter; Excel's trailing empty rows dropped."""
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise CsvFileError("line 1: the first row must name the columns")
    sep = delimiter(lines[0])
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=sep))
    while len(rows) > 1 and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    return rows, sep
