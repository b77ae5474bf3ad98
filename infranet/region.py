"""The region the service runs for: its subregions and powiaty, loaded from a data file.

Nothing here is specific to one voivodeship: the shipped file describes
warmińsko-mazurskie and `[region] districts_file` points at another.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

DistrictKind = Literal["region", "subregion", "powiat"]

# How close a misspelt name must be to a district's to be offered as "did you mean".
# Lower, every town outside the region "resembled" some powiat ("Kraków" -> "Mrągowo").
CLOSE_MATCH = 0.75

_EXTRA_FOLDS = str.maketrans({"ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ø": "o", "Ø": "o"})
_CITY_PREFIX = re.compile(r"^(m|miasto)\s+")
# "powiat elbląski", "pow. ełcki" (folded: "pow elcki"), "powiatu ..." name the powiat itself.
_POWIAT_PREFIX = re.compile(r"^(powiat|powiatu|pow)\s+")


def fold(text: str) -> str:
    """Text reduced to what tells words apart: case-folded, accents and other marks
    removed (ł too, which NFKD keeps), letters and digits of every script kept, and
    everything else (punctuation, symbols, emoji) a single space.

    Every script is kept because titles and names are compared by their fold: one
    that kept only a-z made every Ukrainian, Arabic or emoji-only title the empty
    string, and so "the same" as any other. Polish and other Latin text folds to
    plain ASCII as before ("Ostródzki" -> "ostrodzki"), so district keys and stored
    folds of Latin text do not change."""
    text = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLDS))
    text = unicodedata.normalize("NFKD", text.casefold())
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Mn", "Me"):  # accents, harakat, niqqud: dropped
            continue
        # Letters, digits and spacing marks (vowel signs of Indic scripts are part of the word).
        kept.append(ch if category[0] in "LN" or category == "Mc" else " ")
    return " ".join("".join(kept).split())


def slugify(text: str) -> str:
    return fold(text).replace(" ", "-")


@dataclass(eq=False)
class District:
    slug: str
    name: str
    kind: DistrictKind
    code: str
    parent: District | None = None
    children: list[District] = field(default_factory=list)
    seat: str | None = None  # the town a powiat is run from, when the region file names it
    population: int | None = None  # residents, for figures per 10,000 (region file's year)
    tile: tuple[int, int] | None = None  # (column, row) on the tile map without boundaries

    def __repr__(self) -> str:
        return f"District({self.slug!r}, {self.kind})"

    @property
    def ancestors(self) -> list[District]:
        found, node = [], self.parent
        while node is not None:
            found.append(node)
            node = node.parent
        return found

    @property
    def descendants(self) -> list[District]:
        found: list[District] = []
        for child in self.children:
            found.append(child)
            found.extend(child.descendants)
        return found

    @property
    def is_city(self) -> bool:
        """A city that is a powiat of its own ("m. Olsztyn", "miasto Elbląg")."""
        return self.kind == "powiat" and bool(_CITY_PREFIX.match(fold(self.name)))

    def contains(self, other: District) -> bool:
        """True when `other` is this district or lies inside it."""
        return other is self or self in other.ancestors

    def overlaps(self, other: District) -> bool:
        return self.contains(other) or other.contains(self)


class UnknownDistrict(ValueError):
    """Raised with the close matches, so the user can correct a typo.

    No close match at all means the place is not in the region (`outside`):
    "Kraków" in warmińsko-mazurskie is not a typo to correct."""

    def __init__(self, query: str, suggestions: list[District]) -> None:
        self.query = query
        self.suggestions = suggestions
        hint = ", ".join(d.name for d in suggestions)
        message = f"unknown district {query!r}"
        if hint:
            message += f"; did you mean: {hint}?"
        super().__init__(message)

    @property
    def outside(self) -> bool:
        return not self.suggestions


class AmbiguousDistrict(UnknownDistrict):
    """The name means more than one district ("Olsztyn": the city, which is a powiat of
    its own, or the powiat run from it); `suggestions` are the candidates, the city first.
    A subclass of UnknownDistrict, so that code which does not ask offers them as hints."""

    def __init__(self, query: str, options: list[District]) -> None:
        super().__init__(query, options)

    @property
    def outside(self) -> bool:
        return False


@dataclass(frozen=True)
class RegionFacts:
    """What the region file says beside its districts: where residents' numbers come from
    and the powiat boundaries for maps (None: a tile map is drawn instead)."""

    population_year: int | None = None
    population_source: str = ""
    boundaries: Path | None = None
    boundaries_source: str = ""


class Region:
    def __init__(self, root: District, facts: RegionFacts | None = None) -> None:
        self.root = root
        self.facts = facts or RegionFacts()
        self.districts: list[District] = [root, *root.descendants]
        self.by_slug = {d.slug: d for d in self.districts}
        self._keys: dict[str, District] = {}
        # Later keys do not overwrite earlier ones: powiaty win over the
        # subregions named like them ("elbląski" is the powiat).
        for district in sorted(self.districts, key=lambda d: d.kind != "powiat"):
            for key in self._keys_for(district):
                self._keys.setdefault(key, district)
        # A powiat's seat names it ("Ełk" -> ełcki), unless a city that is a powiat of its
        # own bears that name too ("Olsztyn": m. Olsztyn or olsztyński): then we ask.
        self._ambiguous: dict[str, list[District]] = {}
        for powiat in self.powiaty:
            if not powiat.seat:
                continue
            key = fold(powiat.seat)
            city = self._keys.get(key)
            if city is not None and city is not powiat and city.kind == "powiat":
                self._ambiguous[key] = [city, powiat]
            else:
                self._keys.setdefault(key, powiat)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def subregions(self) -> list[District]:
        return [d for d in self.districts if d.kind == "subregion"]

    @property
    def powiaty(self) -> list[District]:
        return [d for d in self.districts if d.kind == "powiat"]

    def _keys_for(self, district: District) -> list[str]:
        folded = fold(district.name)
        keys = [district.slug, folded, fold(district.slug), district.code.lower()]
        bare = _CITY_PREFIX.sub("", folded)
        if bare != folded:
            keys += [bare, "miasto " + bare]
        if district.kind == "subregion":
            keys.append(folded.removeprefix("podregion ").strip())
            keys.append("subregion " + folded.removeprefix("podregion ").strip())
        if district.kind == "region":
            keys += ["region", "all", "caly region", "wojewodztwo", "whole region"]
        return keys

    def match(self, query: str) -> District:
        """Find a district by slug, TERYT/NUTS code, name or seat, ignoring case and
        diacritics; "powiat X" / "pow. X" name the powiat X, "m. X" / "miasto X" the city.

        Raises AmbiguousDistrict for a name of two districts, UnknownDistrict (with close
        matches, or none when the place lies outside the region) otherwise."""
        key = fold(query)
        bare = _POWIAT_PREFIX.sub("", key)
        for candidate in dict.fromkeys((key, bare)):
            if candidate in self._ambiguous:
                raise AmbiguousDistrict(query, list(self._ambiguous[candidate]))
            if candidate in self._keys:
                return self._keys[candidate]
        if query.strip().lower() in self._keys:
            return self._keys[query.strip().lower()]
        raise UnknownDistrict(query, self.close_matches(bare or key))

    def find(self, query: str) -> District:
        """A district by its slug exactly as stored (what forms, buttons and the database
        pass around: "olsztyn" is m. Olsztyn's), else by `match` (what people type).
        A slug can be a word people type too, so text typed by a person goes to `match`,
        which asks about "olsztyn"; text that may be either goes here."""
        found = self.by_slug.get(query)
        return found if found is not None else self.match(query)

    def close_matches(self, query: str, n: int = 3) -> list[District]:
        names = difflib.get_close_matches(fold(query), [*self._keys, *self._ambiguous], n=n * 3,
                                            cutoff=CLOSE_MATCH)
        seen: list[District] = []
        for name in names:
            for district in self._ambiguous.get(name) or [self._keys[name]]:
                if district not in seen:
                    seen.append(district)
        return seen[:n]

    def get(self, slug: str) -> District:
        return self.by_slug[slug]


def default_region_file() -> Path:
    return Path(str(resources.files("infranet.data").joinpath("warminsko-mazurskie.toml")))


def load_region(path: Path | None = None) -> Region:
    """Read a region file; raise ValueError naming the file and the problem."""
    path = path or default_region_file()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        root = District(slug=data.get("slug") or slugify(data["name"]), name=data["name"],
                        kind="region", code=str(data["teryt"]))
        for sub in data["subregions"]:
            subregion = District(slug=sub.get("slug") or slugify(sub["name"]), name=sub["name"],
                                 kind="subregion", code=str(sub["code"]), parent=root)
            root.children.append(subregion)
            for pow_ in sub["powiaty"]:
                bare = _CITY_PREFIX.sub("", fold(pow_["name"]))
                tile = pow_.get("tile")
                powiat = District(slug=pow_.get("slug") or bare.replace(" ", "-"),
                                  name=pow_["name"], kind="powiat", code=str(pow_["teryt"]),
                                  parent=subregion, seat=pow_.get("seat") or None,
                                  population=int(pow_["population"]) if "population" in pow_ else None,
                                  tile=(int(tile[0]), int(tile[1])) if tile else None)
                subregion.children.append(powiat)
        boundaries = path.parent / data["boundaries"] if data.get("boundaries") else None
        if boundaries is not None and not boundaries.is_file():
            raise ValueError(f"boundaries file {boundaries} not found")
        facts = RegionFacts(population_year=data.get("population_year"),
                            population_source=str(data.get("population_source", "")),
                            boundaries=boundaries,
                            boundaries_source=str(data.get("boundaries_source", "")))
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"region file {path}: {exc!s}") from exc
    slugs = [root.slug, *(d.slug for d in root.descendants)]
    duplicates = {s for s in slugs if slugs.count(s) > 1}
    if duplicates:
        raise ValueError(f"region file {path}: duplicate slugs {sorted(duplicates)}")
    return Region(root, facts)
