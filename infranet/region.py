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

_EXTRA_FOLDS = str.maketrans({"ł": "l", "Ł": "l", "đ": "d", "ø": "o"})
_CITY_PREFIX = re.compile(r"^(m|miasto)\s+")


def fold(text: str) -> str:
    """Lower-case, strip diacritics (ł too, which NFKD keeps) and punctuation."""
    text = unicodedata.normalize("NFKD", text.translate(_EXTRA_FOLDS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^a-z0-9]+", " ", text)
    return " ".join(text.split())


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

    def contains(self, other: District) -> bool:
        """True when `other` is this district or lies inside it."""
        return other is self or self in other.ancestors

    def overlaps(self, other: District) -> bool:
        return self.contains(other) or other.contains(self)


class UnknownDistrict(ValueError):
    """Raised with the close matches, so the user can correct a typo."""

    def __init__(self, query: str, suggestions: list[District]) -> None:
        self.query = query
        self.suggestions = suggestions
        hint = ", ".join(d.name for d in suggestions)
        message = f"unknown district {query!r}"
        if hint:
            message += f"; did you mean: {hint}?"
        super().__init__(message)


class Region:
    def __init__(self, root: District) -> None:
        self.root = root
        self.districts: list[District] = [root, *root.descendants]
        self.by_slug = {d.slug: d for d in self.districts}
        self._keys: dict[str, District] = {}
        # Later keys do not overwrite earlier ones: powiaty win over the
        # subregions named like them ("elbląski" is the powiat).
        for district in sorted(self.districts, key=lambda d: d.kind != "powiat"):
            for key in self._keys_for(district):
                self._keys.setdefault(key, district)

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
        """Find a district by slug, TERYT/NUTS code or name, ignoring case and diacritics."""
        key = fold(query)
        if key in self._keys:
            return self._keys[key]
        if query.strip().lower() in self._keys:
            return self._keys[query.strip().lower()]
        raise UnknownDistrict(query, self.close_matches(query))

    def close_matches(self, query: str, n: int = 3) -> list[District]:
        names = difflib.get_close_matches(fold(query), list(self._keys), n=n * 3, cutoff=0.6)
        seen: list[District] = []
        for name in names:
            district = self._keys[name]
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
                powiat = District(slug=pow_.get("slug") or bare.replace(" ", "-"),
                                  name=pow_["name"], kind="powiat", code=str(pow_["teryt"]),
                                  parent=subregion)
                subregion.children.append(powiat)
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"region file {path}: {exc!s}") from exc
    slugs = [root.slug, *(d.slug for d in root.descendants)]
    duplicates = {s for s in slugs if slugs.count(s) > 1}
    if duplicates:
        raise ValueError(f"region file {path}: duplicate slugs {sorted(duplicates)}")
    return Region(root)
