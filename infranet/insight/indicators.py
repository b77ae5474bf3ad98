"""The network's indicators per powiat for a period, from the counts each component keeps.

What counts where (the same rules on the page, in the bot and in the yearly report):
- organisations: active member organisations present in the powiat, i.e. serving it, its
  subregion or the whole region; `services[s]`: how many of them offer service s there;
- events, trainings, training places: those posted for the powiat itself (events posted for
  a subregion or the whole region are counted in `wider`, not spread over powiaty);
- referrals made / received: by organisations present in the powiat (an organisation
  serving several powiaty counts in each, so powiaty do not add up to the region);
- organisations supported: different organisations and groups supported in the powiat
  (the support register); accepted referrals name no powiat and count in `wider`;
- subscribers: confirmed newsletter readers who chose the powiat or its subregion (readers
  of the whole region are counted in `wider`).
Each figure is also given per 10,000 residents where the region file has the population.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.counts import calendar_counts
from infranet.calendar.wallclock import local_midnight
from infranet.context import AppContext
from infranet.errors import ValidationFailed
from infranet.network.counts import Presence, active_presence, referral_counts
from infranet.network.support_figures import support_totals, supported_per_district
from infranet.newsletter.counts import subscribers_by_areas
from infranet.region import District
from infranet.storage.districts import district_ids

# The indicators a visitor can choose for the map, in the order the page lists them.
INDICATORS = ("organisations", "events", "trainings", "training_places", "referrals_made",
              "referrals_received", "supported", "subscribers")
PER = 10_000
# The first year the figures may be asked for (the page's list of years starts here).
FIRST_YEAR = 2020


@dataclass(frozen=True)
class Period:
    """Days from `first` to the day before `after`, as the region's clocks count them."""

    first: date
    after: date

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year + 1, 1, 1))

    @property
    def last(self) -> date:
        return date.fromordinal(self.after.toordinal() - 1)


def year_asked(text: str | None, this_year: int) -> int:
    """The year a visitor or member asked for (None: this year), from FIRST_YEAR to this
    year; anything else is refused with a message naming the range."""
    if text is None:
        return this_year
    text = text[:8]
    if not text.isdigit() or not FIRST_YEAR <= int(text) <= this_year:
        raise ValidationFailed("site.insight.bad_year", value=text, first=FIRST_YEAR,
                               last=this_year)
    return int(text)


@dataclass
class PowiatFigures:
    district: District
    values: dict[str, int] = field(default_factory=dict)
    services: Counter[str] = field(default_factory=Counter)  # organisations offering each
    categories: Counter[str] = field(default_factory=Counter)  # events by category
    audiences: Counter[str] = field(default_factory=Counter)  # events by audience

    @property
    def population(self) -> int | None:
        return self.district.population

    def per_residents(self, indicator: str) -> float | None:
        """The figure per 10,000 residents (None without a population figure)."""
        if not self.population:
            return None
        return self.values.get(indicator, 0) * PER / self.population


@dataclass
class Insight:
    period: Period
    powiaty: list[PowiatFigures]
    # Figures not tied to one powiat: events and trainings posted for a subregion or the
    # whole region, subscribers reading the whole region.
    wider: dict[str, int]
    # Whole-region totals, each thing counted once.
    totals: dict[str, int]
    events_by_organisation: Counter[int]
    organisations: list[Presence]
    # organisation id -> slugs of the powiaty it is present in (see the module's rules)
    present_in: dict[int, set[str]]

    def figures(self, slug: str) -> PowiatFigures:
        return next(p for p in self.powiaty if p.district.slug == slug)

    def median_per_residents(self, indicator: str) -> float | None:
        shown = [v for p in self.powiaty if (v := p.per_residents(indicator)) is not None]
        return statistics.median(shown) if shown else None


async def gather(session: AsyncSession, ctx: AppContext, period: Period) -> Insight:
    """Every indicator of every powiat for `period`, in a few grouped queries."""
    region = ctx.region
    powiaty = {p.slug: PowiatFigures(p, {name: 0 for name in INDICATORS}) for p in region.powiaty}
    ids = await district_ids(session)
    by_id = {district_id: region.by_slug[slug] for slug, district_id in ids.items()
             if slug in region.by_slug}
    # district id -> the powiaty it is or contains, worked out once (2,000 organisations
    # asked it about 8,000 times)
    under = {district_id: _powiaty_under([district]) for district_id, district in by_id.items()}
    wider: Counter[str] = Counter()
    totals: Counter[str] = Counter()

    presence = await active_presence(session)
    present_in: dict[int, set[str]] = {}
    for org in presence:
        places = set().union(*(under[i] for i in org.district_ids if i in under))
        present_in[org.id] = places
        for slug in places:
            powiaty[slug].values["organisations"] += 1
            powiaty[slug].services.update(set(org.services))
    totals["organisations"] = len(presence)

    counts = await calendar_counts(session, ctx.tz, period.first, period.after)
    for name, counter in (("events", counts.events), ("trainings", counts.trainings),
                          ("training_places", counts.training_places)):
        for district_id, count in counter.items():
            district = by_id.get(district_id)
            totals[name] += count
            if district is not None and district.kind == "powiat":
                powiaty[district.slug].values[name] += count
            else:
                wider[name] += count
    for (district_id, category), count in counts.by_category.items():
        district = by_id.get(district_id)
        if district is not None and district.kind == "powiat":
            powiaty[district.slug].categories[category] += count
    for (district_id, audience), count in counts.by_audience.items():
        district = by_id.get(district_id)
        if district is not None and district.kind == "powiat":
            powiaty[district.slug].audiences[audience] += count

    start, end = local_midnight(period.first, ctx.tz), local_midnight(period.after, ctx.tz)
    referrals = await referral_counts(session, start, end)
    for name, counter in (("referrals_made", referrals.made),
                          ("referrals_received", referrals.received)):
        for org_id, count in counter.items():
            for slug in present_in.get(org_id, ()):
                powiaty[slug].values[name] += count
    totals["referrals_made"] = totals["referrals_received"] = sum(referrals.made.values())

    for supported in await supported_per_district(session, ctx, period.first, period.last):
        if supported.district in powiaty:
            powiaty[supported.district].values["supported"] += supported.organisations
        else:  # accepted referrals, which name no powiat
            wider["supported"] += supported.organisations
    totals["supported"] = (await support_totals(session, ctx, period.first, period.last)).organisations

    for areas, count in (await subscribers_by_areas(session)).items():
        chosen = [region.by_slug[s] for s in areas if s in region.by_slug]
        if not chosen or any(d.kind == "region" for d in chosen):
            wider["subscribers"] += count
        for slug in _powiaty_under([d for d in chosen if d.kind != "region"]):
            powiaty[slug].values["subscribers"] += count
        totals["subscribers"] += count

    return Insight(period, [powiaty[p.slug] for p in region.powiaty], dict(wider), dict(totals),
                   counts.by_organisation, presence, present_in)


def _powiaty_under(districts: list[District]) -> set[str]:
    """The powiaty that the districts are or contain."""
    found: set[str] = set()
    for district in districts:
        if district.kind == "powiat":
            found.add(district.slug)
        else:
            found.update(d.slug for d in district.descendants if d.kind == "powiat")
    return found
