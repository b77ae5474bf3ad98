"""What a feed shows: `FeedFilter`, read from query parameters by `parse_filter`, and its name.

Filters are canonical (sorted, without repeats, areas reduced to the fewest that cover the
same districts), so that equal feeds are equal filters and share one entry of the feed
cache (`infranet.calendar.feed`). The HTTP API reads its list filters with the same
`filter_values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infranet.calendar.event_input import AUDIENCES, CATEGORIES, resolve_district
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.i18n import DEFAULT_LANGUAGE, t
from infranet.region import District as RegionDistrict
from infranet.web.params import MAX_PARAM_CHARS, check_length, parse_ids

# More values than this in one parameter is not a filter anyone picks by hand (the region
# has a few dozen districts); refused before any of them is looked up.
MAX_FILTER_VALUES = 100



@dataclass(frozen=True)
class FeedFilter:
    """What a feed shows. Built by `parse_filter`, which makes equal feeds equal filters
    (sorted, without repeats, areas reduced to the fewest that cover the same districts),
    so that they share one cache entry."""

    areas: tuple[str, ...] = ()  # district slugs
    categories: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    organisations: tuple[int, ...] = ()

    def query_string(self) -> str:
        from urllib.parse import urlencode

        pairs: list[tuple[str, str]] = []
        pairs += [("area", a) for a in self.areas]
        pairs += [("category", c) for c in self.categories]
        pairs += [("audience", a) for a in self.audiences]
        pairs += [("org", str(o)) for o in self.organisations]
        return urlencode(pairs)


def filter_values(params: Mapping[str, Sequence[str]] | Any, name: str) -> list[str]:
    """A parameter's values, repeated or comma-separated, each bounded in length and count."""
    raw = params.getlist(name) if hasattr(params, "getlist") else params.get(name, [])
    if isinstance(raw, str):
        raw = [raw]
    limit = MAX_FILTER_VALUES
    if len(raw) > limit:
        raise ValidationFailed("calendar.error.too_many_values", field=name, count=len(raw), limit=limit)
    for value in raw:
        check_length(value, name, limit * (MAX_PARAM_CHARS + 1))
    parts = [part.strip() for value in raw for part in value.split(",") if part.strip()]
    if len(parts) > limit:
        raise ValidationFailed("calendar.error.too_many_values", field=name, count=len(parts), limit=limit)
    for part in parts:
        check_length(part, name)
    return parts


def canonical_areas(districts: Iterable[RegionDistrict]) -> tuple[str, ...]:
    """The fewest areas whose feed is the same as that of `districts`, as sorted slugs.

    An area's feed holds the events of the area, of its parents and of everything inside
    it. So an area inside another listed area adds nothing (`area=<powiat>&area=<its
    subregion>` is the subregion's feed; anything beside the region is the region's), and
    all the children of a district together are that district."""
    chosen = {d.slug: d for d in districts}
    changed = True
    while changed:
        changed = False
        for slug, district in list(chosen.items()):
            if any(parent.slug in chosen for parent in district.ancestors):
                del chosen[slug]
                changed = True
        for district in list(chosen.values()):
            parent = district.parent
            if (parent is not None and parent.slug not in chosen
                    and all(child.slug in chosen for child in parent.children)):
                for child in parent.children:
                    del chosen[child.slug]
                chosen[parent.slug] = parent
                changed = True
                break
    return tuple(sorted(chosen))


def parse_filter(ctx: AppContext, params: Mapping[str, Sequence[str]] | Any) -> FeedFilter:
    """From query parameters (repeated or comma-separated); raises ValidationFailed."""
    areas = canonical_areas(resolve_district(ctx, a) for a in filter_values(params, "area"))
    categories = tuple(dict.fromkeys(filter_values(params, "category")))
    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise ValidationFailed("error.choose_from", field="category", values=", ".join(bad),
                               choices=", ".join(CATEGORIES))
    audiences = tuple(dict.fromkeys(filter_values(params, "audience")))
    bad = [a for a in audiences if a not in AUDIENCES]
    if bad:
        raise ValidationFailed("error.choose_from", field="audience", values=", ".join(bad),
                               choices=", ".join(AUDIENCES))
    orgs = parse_ids(filter_values(params, "org"), "org")
    return FeedFilter(areas=areas, categories=tuple(sorted(categories)),
                      audiences=tuple(sorted(audiences)), organisations=orgs)


def feed_name(ctx: AppContext, flt: FeedFilter) -> str:
    name = t(DEFAULT_LANGUAGE, "calendar.feed.name", region=ctx.region.name)
    if flt.areas:
        name += " – " + ", ".join(ctx.region.by_slug[s].name for s in flt.areas
                                  if s in ctx.region.by_slug)
    return name
