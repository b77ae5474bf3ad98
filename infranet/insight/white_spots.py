"""White spots: powiaty where the network's support is missing or thin.

- For a service: no active organisation offers it in the powiat (`missing`), or the
  organisations offering it per 10,000 residents fall below `[insight] white_spot_share`
  of the regional median (`thin`).
- For an indicator (events, trainings, ...): its figure per 10,000 residents is below the
  same share of the regional median (`thin`); a powiat with nothing at all is `missing`.
Each spot names the nearest organisations offering the service (for an indicator: any
active organisation), nearest by the distance between powiat centres on the map.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from infranet.insight.indicators import PER, Insight, PowiatFigures
from infranet.insight.map_shapes import layout
from infranet.network.counts import Presence
from infranet.region import District, Region

NEAREST = 3


@dataclass(frozen=True)
class Nearby:
    organisation: str
    powiat: District  # the nearest powiat it serves


@dataclass(frozen=True)
class WhiteSpot:
    powiat: District
    subject: str  # a service code or an indicator name
    kind: str  # "missing" | "thin"
    value: float | None  # per 10,000 residents
    median: float | None
    nearest: tuple[Nearby, ...]


def service_spots(insight: Insight, region: Region, services: tuple[str, ...],
                  share: float) -> list[WhiteSpot]:
    spots = []
    for service in services:
        rates = {p.district.slug: _rate(p.services.get(service, 0), p) for p in insight.powiaty}
        median = _median(rates.values())
        offering = Nearest(region, [o for o in insight.organisations if service in o.services],
                           insight.present_in)
        for figures in insight.powiaty:
            count, rate = figures.services.get(service, 0), rates[figures.district.slug]
            kind = "missing" if count == 0 else _thin(rate, median, share)
            if kind:
                spots.append(WhiteSpot(figures.district, service, kind, rate, median,
                                       offering(figures.district)))
    return spots


def indicator_spots(insight: Insight, region: Region, indicator: str,
                    share: float) -> list[WhiteSpot]:
    median = insight.median_per_residents(indicator)
    nearest = Nearest(region, insight.organisations, insight.present_in)
    spots = []
    for figures in insight.powiaty:
        rate = figures.per_residents(indicator)
        kind = "missing" if figures.values.get(indicator, 0) == 0 else _thin(rate, median, share)
        if kind:
            spots.append(WhiteSpot(figures.district, indicator, kind, rate, median,
                                   nearest(figures.district)))
    return spots


def _rate(count: int, figures: PowiatFigures) -> float | None:
    return count * PER / figures.population if figures.population else None


def _median(values: Iterable[float | None]) -> float | None:
    shown = [v for v in values if v is not None]
    return statistics.median(shown) if shown else None


def _thin(rate: float | None, median: float | None, share: float) -> str:
    if rate is None or median is None or median == 0:
        return ""
    return "thin" if rate < share * median else ""


class Nearest:
    """Finds the organisations nearest to a powiat among `organisations`: those present in
    it first, then those of the next nearest powiaty (by the centres of the region's map).
    An organisation serving a subregion or the region serves each powiat in it. Built once
    per list of organisations; each question then walks the region's powiaty in order."""

    def __init__(self, region: Region, organisations: list[Presence],
                 present_in: dict[int, set[str]]) -> None:
        self.region = region
        self.centres = {shape.code: shape.centre for shape in layout(region).shapes}
        self.present: dict[str, list[str]] = {}
        for org in sorted(organisations, key=lambda o: o.name):
            for slug in present_in.get(org.id, ()):
                self.present.setdefault(slug, []).append(org.name)

    def __call__(self, powiat: District, limit: int = NEAREST) -> tuple[Nearby, ...]:
        here = self.centres.get(powiat.code, (0.0, 0.0))
        found: dict[str, Nearby] = {}
        for district in sorted(self.region.powiaty, key=lambda d: (
                math.dist(here, self.centres.get(d.code, here)), d.slug)):
            for name in self.present.get(district.slug, ()):
                found.setdefault(name, Nearby(name, district))
            if len(found) >= limit:
                break
        return tuple(found.values())[:limit]
