"""Add a message to the catalogs: its id to infranet/locale/infranet.pot, its Polish and
English texts to the two .po files (sorted by id, as the catalogs are kept).

    python scripts/add_message.py bounces.down --pl "Skrzynka ..." --en "The mailbox ..."
    python scripts/add_message.py bot.count.people --plural count \
        --pl "{count} osoba" "{count} osoby" "{count} osób" --en "{count} person" "{count} people"

A translator may change any text afterwards with a PO editor; tests/test_catalogs.py checks
that every id used in code is there and that both languages take the same parameters.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from babel.messages.pofile import read_po, write_po

LOCALE = Path(__file__).resolve().parent.parent / "infranet" / "locale"


def _update(path: Path, key: str, texts: list[str], plural: str | None, english: str) -> None:
    with path.open("rb") as po:
        catalog = read_po(po)
    if key in catalog:
        raise SystemExit(f"{key} is already in {path}")
    notes = ([f"plural: {plural}"] if plural else []) + [f"en: {english}"]
    if plural:
        catalog.add((key, key), tuple(texts), auto_comments=notes)
    else:
        catalog.add(key, texts[0], auto_comments=notes)
    with path.open("wb") as po:
        write_po(po, catalog, width=100, sort_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("id")
    parser.add_argument("--pl", nargs="+", required=True, help="Polish text (3 plural forms)")
    parser.add_argument("--en", nargs="+", required=True, help="English text (2 plural forms)")
    parser.add_argument("--plural", metavar="PARAM", help="the parameter that counts")
    args = parser.parse_args()
    forms = {"pl": 3, "en": 2} if args.plural else {"pl": 1, "en": 1}
    for lang in forms:
        if len(getattr(args, lang)) != forms[lang]:
            raise SystemExit(f"--{lang} needs {forms[lang]} text(s)")
    english = args.en[-1]
    _update(LOCALE / "infranet.pot", args.id, [""] * (2 if args.plural else 1), args.plural, english)
    for lang in forms:
        _update(LOCALE / lang / "LC_MESSAGES" / "infranet.po", args.id, getattr(args, lang),
                args.plural, english)
    print(f"added {args.id}")


if __name__ == "__main__":
    main()
