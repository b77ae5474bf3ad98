"""`/insight`: the network seen per powiat, for everyone (counts only, never a person).

- `GET /insight?year=2026&indicator=events&measure=residents&service=legal-advice`
  the map of the chosen indicator (per 10,000 residents or in numbers) with its table, the
  white spots of the indicator and of a service, and the region's totals;
- `GET /insight/map.svg?…` and `GET /insight/map.png?…`: the same map to download.
The figures and their rules are `infranet.insight`'s; this module reads parameters and
shows them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from infranet.calendar.event_input import audience_label, category_label
from infranet.errors import ValidationFailed
from infranet.i18n import format_amount, t
from infranet.insight.cache import InsightCache
from infranet.insight.indicators import FIRST_YEAR, INDICATORS, Insight, Period, year_asked
from infranet.insight.map_png import choropleth_png
from infranet.insight.map_shapes import layout
from infranet.insight.map_svg import choropleth
from infranet.insight.white_spots import WhiteSpot, indicator_spots, service_spots
from infranet.network.orgs import SERVICES
from infranet.site.pages import Site, lang_param, with_params

MEASURES = ("residents", "count")


@dataclass(frozen=True)
class Choice:
    year: int
    indicator: str
    measure: str
    service: str

    def params(self, lang: str) -> list[tuple[str, str]]:
        return [("year", str(self.year)), ("indicator", self.indicator),
                ("measure", self.measure), ("service", self.service), *lang_param(lang)]


def parse_choice(request: Request, this_year: int) -> Choice:
    query = request.query_params
    choice = Choice(year_asked(query.get("year"), this_year), query.get("indicator", "events")[:40],
                    query.get("measure", "residents")[:40], query.get("service", SERVICES[0])[:40])
    for name, value, allowed in (("indicator", choice.indicator, INDICATORS),
                                 ("measure", choice.measure, MEASURES),
                                 ("service", choice.service, SERVICES)):
        if value not in allowed:
            raise ValidationFailed("error.choose_from", field=name, values=value[:40],
                                   choices=", ".join(allowed))
    return choice


def routes(site: Site) -> list[BaseRoute]:
    page = InsightPage(site)
    return [Route("/insight", page.page), Route("/insight/map.svg", page.svg),
            Route("/insight/map.png", page.png)]


class InsightPage:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.ctx = site.ctx
        self.figures = InsightCache(site.ctx)

    async def _load(self, request: Request) -> tuple[str, Choice, Insight] | Response:
        lang = self.site.language(request)
        try:
            choice = parse_choice(request, self.ctx.now().astimezone(self.ctx.tz).year)
        except ValidationFailed as exc:
            return self.site.problem(request, lang, exc.localized(lang))
        async with self.ctx.db.read() as session:
            insight = await self.figures.get(session, Period.year(choice.year))
        return lang, choice, insight

    def _values(self, insight: Insight, choice: Choice) -> dict[str, float | None]:
        if choice.measure == "residents":
            return {p.district.code: p.per_residents(choice.indicator) for p in insight.powiaty}
        return {p.district.code: float(p.values[choice.indicator]) for p in insight.powiaty}

    def _fmt(self, choice: Choice, lang: str) -> Any:
        decimals = 1 if choice.measure == "residents" else 0
        return lambda value: format_amount(value, lang, decimals=decimals)

    def _svg(self, insight: Insight, choice: Choice, lang: str, ident: str = "map") -> str:
        """The map of the chosen indicator: inline on the page and as the SVG download."""
        return choropleth(layout(self.ctx.region), self._values(insight, choice),
                          title=self._map_title(choice, lang),
                          description=t(lang, "site.insight.map_description",
                                        region=self.ctx.region.name),
                          no_data=t(lang, "site.insight.no_data"), fmt=self._fmt(choice, lang),
                          ident=ident)

    def _map_title(self, choice: Choice, lang: str) -> str:
        return t(lang, f"site.insight.measure.{choice.measure}",
                 indicator=t(lang, f"site.insight.indicator.{choice.indicator}"), year=choice.year)

    async def page(self, request: Request) -> Response:
        loaded = await self._load(request)
        if isinstance(loaded, Response):
            return loaded
        lang, choice, insight = loaded
        fmt = self._fmt(choice, lang)
        region = self.ctx.region
        svg = self._svg(insight, choice, lang, ident="insight-map")
        share = self.ctx.settings.insight.white_spot_share
        rows = [{"name": p.district.name, "population": p.population,
                 "count": p.values[choice.indicator],
                 "rate": p.per_residents(choice.indicator)} for p in insight.powiaty]
        downloads = with_params("/insight/map.svg", choice.params(lang)), \
            with_params("/insight/map.png", choice.params(lang))
        return self.site.page(
            request, "insight.html", lang, title=t(lang, "site.insight.title"),
            choice=choice,
            years=list(range(self.ctx.now().astimezone(self.ctx.tz).year, FIRST_YEAR - 1, -1)),
            indicators=[(i, t(lang, f"site.insight.indicator.{i}")) for i in INDICATORS],
            services=[(s, t(lang, f"org.service.{s}")) for s in SERVICES],
            measures=[(m, t(lang, f"site.insight.measure_choice.{m}")) for m in MEASURES],
            map_svg=svg, map_title=self._map_title(choice, lang), rows=rows, fmt=fmt,
            amount=lambda v, d=0: format_amount(v, lang, decimals=d),
            indicator_label=t(lang, f"site.insight.indicator.{choice.indicator}"),
            service_label=t(lang, f"org.service.{choice.service}"),
            indicator_spots=self._spots(indicator_spots(insight, region, choice.indicator, share)),
            service_spots=self._spots(service_spots(insight, region, (choice.service,), share)),
            share=format_amount(share * 100, lang, decimals=0),
            totals=[(t(lang, f"site.insight.indicator.{i}"), insight.totals.get(i, 0),
                     insight.wider.get(i, 0)) for i in INDICATORS],
            categories=self._breakdown(insight, "categories", category_label, lang),
            audiences=self._breakdown(insight, "audiences", audience_label, lang),
            downloads=downloads, facts=region.facts,
            service_matrix=[(p.district.name, [p.services.get(code, 0) for code in SERVICES])
                            for p in insight.powiaty])

    def _spots(self, spots: list[WhiteSpot]) -> list[dict[str, Any]]:
        return [{"powiat": s.powiat.name, "kind": s.kind, "rate": s.value,
                 "median": s.median,
                 "nearest": [(n.organisation, n.powiat.name) for n in s.nearest]} for s in spots]

    def _breakdown(self, insight: Insight, field: str, label: Any, lang: str
                   ) -> list[tuple[str, int]]:
        total: dict[str, int] = {}
        for powiat in insight.powiaty:
            for code, count in getattr(powiat, field).items():
                total[code] = total.get(code, 0) + count
        return sorted(((label(code, lang), count) for code, count in total.items()),
                      key=lambda item: (-item[1], item[0]))

    async def svg(self, request: Request) -> Response:
        loaded = await self._load(request)
        if isinstance(loaded, Response):
            return loaded
        lang, choice, insight = loaded
        body = self._svg(insight, choice, lang)
        return Response(body, media_type="image/svg+xml", headers={
            "Content-Disposition": f'inline; filename="map-{choice.indicator}-{choice.year}.svg"'})

    async def png(self, request: Request) -> Response:
        loaded = await self._load(request)
        if isinstance(loaded, Response):
            return loaded
        lang, choice, insight = loaded
        values, fmt = self._values(insight, choice), self._fmt(choice, lang)
        # Drawing takes tens of milliseconds: away from the event loop.
        body = await asyncio.to_thread(
            choropleth_png, layout(self.ctx.region), values, title=self._map_title(choice, lang),
            no_data=t(lang, "site.insight.no_data"), fmt=fmt)
        return Response(body, media_type="image/png", headers={
            "Content-Disposition": f'inline; filename="map-{choice.indicator}-{choice.year}.png"'})
