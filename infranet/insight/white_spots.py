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
        offering = [o for o in insight.organisations if service in o.services]
        for figures in insight.powiaty:
            count, rate = figures.services.get(service, 0), rates[figures.district.slug]
            kind = "missing" if count == 0 else _thin(rate, median, share)
            if kind:
                spots.append(WhiteSpot(figures.district, service, kind, rate, median,
                                       nearest(region, figures.district, offering,
                                               insight.present_in)))
    return spots


def indicator_spots(insight: Insight, region: Region, indicator: str,
                    share: float) -> list[WhiteSpot]:
    median = insight.median_per_residents(indicator)
    spots = []
    for figures in insight.powiaty:
        rate = figures.per_residents(indicator)
        kind = "missing" if figures.values.get(indicator, 0) == 0 else _thin(rate, median, share)
        if kind:
            spots.append(WhiteSpot(figures.district, indicator, kind, rate, median,
                                   nearest(region, figures.district, insight.organisations,
                                           insight.present_in)))
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


def nearest(region: Region, powiat: District, organisations: list[Presence],
            present_in: dict[int, set[str]], limit: int = NEAREST) -> tuple[Nearby, ...]:
    """The organisations whose nearest served powiat lies closest to `powiat` (by the
    centres of the region's map), with that powiat: those present in `powiat` itself come
    first. An organisation serving a subregion or the region serves each powiat in it."""
    centres = {shape.code: shape.centre for shape in layout(region).shapes}
    here = centres.get(powiat.code, (0.0, 0.0))
    ranked = []
    for org in organisations:
        served = [region.by_slug[slug] for slug in present_in.get(org.id, ())]
        if not served:
            continue
        best = min(served, key=lambda d: (math.dist(here, centres.get(d.code, here)), d.slug))
        ranked.append((math.dist(here, centres.get(best.code, here)), org.name, best))
    ranked.sort(key=lambda item: (item[0], item[1]))
    return tuple(Nearby(name, best) for _, name, best in ranked[:limit])
