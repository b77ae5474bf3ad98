"""The yearly evaluation of the agreement ("coroczna ewaluacja porozumienia").

`build_report(session, ctx, year, lang)` gathers the year into tables; each output shows
the same tables: `render_html` (charts beside their numbers, the map), `to_pdf` (made from
that HTML by WeasyPrint) and `to_xlsx` (one sheet per table). Counts only: no person's
data is in any table. The newsletter's reach has no opens or clicks: it never tracks them.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from infranet.calendar.coordination import coordination_counts
from infranet.calendar.event_input import audience_label, category_label
from infranet.calendar.wallclock import local_midnight
from infranet.context import AppContext
from infranet.i18n import format_amount, t
from infranet.insight.indicators import Insight, Period, gather
from infranet.insight.map_shapes import layout
from infranet.insight.map_svg import choropleth
from infranet.insight.white_spots import service_spots
from infranet.network.counts import membership, referral_counts
from infranet.network.orgs import ORG_TYPES, SERVICES
from infranet.network.support_figures import duplicates_avoided, support_totals
from infranet.newsletter.counts import reach

Cell = str | int | float


@dataclass(frozen=True)
class Table:
    key: str  # the XLSX sheet's name (short, unique)
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    chart: bool = False  # bars of the last column beside the table
    note: str = ""


@dataclass
class YearlyReport:
    year: int
    lang: str
    region: str
    tables: list[Table] = field(default_factory=list)
    map_svg: str = ""
    map_title: str = ""
    sources: list[str] = field(default_factory=list)

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


async def build_report(session: AsyncSession, ctx: AppContext, year: int, lang: str) -> YearlyReport:
    period = Period.year(year)
    start, end = local_midnight(period.first, ctx.tz), local_midnight(period.after, ctx.tz)
    this = await gather(session, ctx, period)
    last = await gather(session, ctx, Period.year(year - 1))
    _ = partial(t, lang)
    report = YearlyReport(year, lang, ctx.region.name)

    people = await membership(session)
    names = {org.id: org.name for org in this.organisations}
    posting = Counter({names.get(org_id, "—"): n for org_id, n in this.events_by_organisation.items()})
    report.tables.append(Table("members", _("report.members.title"),
                               (_("report.item"), _("report.count")), (
        (_("report.members.organisations"), people.organisations),
        (_("report.members.members"), people.members),
        (_("report.members.posting"), len(this.events_by_organisation)),
        (_("report.members.events"), this.totals.get("events", 0)),
    )))
    report.tables.append(Table("events_by_org", _("report.events_by_org.title"),
                               (_("report.organisation"), _("report.events")),
                               tuple(posting.most_common()), chart=True))

    coordination = await coordination_counts(session, start, end)
    report.tables.append(Table("coordination", _("report.coordination.title"),
                               (_("report.item"), _("report.count")), (
        (_("report.coordination.warned"), coordination.warned),
        (_("report.coordination.moved_suggested"), coordination.moved_suggested),
        (_("report.coordination.moved_other"), coordination.moved_other),
        (_("report.coordination.kept"), coordination.kept),
        (_("report.coordination.dropped"), coordination.dropped),
    ), chart=True, note=_("report.coordination.note")))

    report.tables.append(_breakdown("categories", _("report.categories.title"), this, "categories",
                                    partial(_label, category_label, lang), _("report.events"), lang))
    report.tables.append(_breakdown("audiences", _("report.audiences.title"), this, "audiences",
                                    partial(_label, audience_label, lang), _("report.events"), lang))
    report.tables.append(Table("trainings", _("report.trainings.title"),
                               (_("report.powiat"), _("report.trainings.notices"),
                                _("report.trainings.places")),
                               (*((p.district.name, p.values["trainings"],
                                    p.values["training_places"]) for p in this.powiaty),
                                  (_("report.wider"), this.wider.get("trainings", 0),
                                   this.wider.get("training_places", 0)),
                                  (_("report.total"), this.totals.get("trainings", 0),
                                   this.totals.get("training_places", 0)))))

    referrals = await referral_counts(session, start, end)
    statuses = sorted({status for _kind, status in referrals.by_type_and_status})
    by_status: Counter[str] = Counter()
    for (_kind, status), count in referrals.by_type_and_status.items():
        by_status[status] += count
    report.tables.append(Table("referral_outcomes", _("report.referrals.by_outcome"),
                               (_("report.referrals.outcome"), _("report.count")),
                               tuple((_(f"bot.refer.status.{s}"), by_status[s]) for s in statuses),
                               chart=True))
    kinds = sorted({kind for kind, _status in referrals.by_type_and_status},
                   key=lambda k: ORG_TYPES.index(k) if k in ORG_TYPES else len(ORG_TYPES))
    report.tables.append(Table("referral_types", _("report.referrals.by_type"),
                               (_("report.org_type"), *(_(f"bot.refer.status.{s}") for s in statuses)),
                               tuple((_org_type(k, lang), *(referrals.by_type_and_status[(k, s)]
                                                            for s in statuses)) for k in kinds)))

    support = await support_totals(session, ctx, period.first, period.last)
    decisions = await duplicates_avoided(session, ctx, period.first, period.last)
    report.tables.append(Table("support", _("report.support.title"),
                               (_("report.item"), _("report.count")), (
        (_("report.support.organisations"), support.organisations),
        (_("report.support.records"), support.records),
        (_("report.support.avoided"), sum(d.dropped for d in decisions)),
        (_("report.support.saved_anyway"), sum(d.saved for d in decisions)),
    )))

    newsletter = await reach(session, start, end)
    report.tables.append(Table("newsletter", _("report.newsletter.title"),
                               (_("report.item"), _("report.count")), (
        (_("report.newsletter.subscribers"), newsletter.subscribers),
        (_("report.newsletter.joined"), newsletter.joined),
        (_("report.newsletter.left"), newsletter.left),
        (_("report.newsletter.issues"), newsletter.issues),
        (_("report.newsletter.delivered"), newsletter.delivered),
        (_("report.newsletter.failed"), newsletter.failed),
        (_("report.newsletter.bounces"), newsletter.hard_bounces),
    ), note=_("report.newsletter.note")))

    share = ctx.settings.insight.white_spot_share
    now_spots = service_spots(this, ctx.region, SERVICES, share)
    then_spots = service_spots(last, ctx.region, SERVICES, share)
    rows = []
    for service in SERVICES:
        now = {s.powiat.name for s in now_spots if s.subject == service}
        then = {s.powiat.name for s in then_spots if s.subject == service}
        rows.append((_(f"org.service.{service}"), len(then), len(now),
                     ", ".join(sorted(then - now)) or "—", ", ".join(sorted(now - then)) or "—"))
    report.tables.append(Table("white_spots", _("report.white_spots.title", year=year, last=year - 1),
                               (_("report.service"), str(year - 1), str(year),
                                _("report.white_spots.closed"), _("report.white_spots.opened")),
                               tuple(rows), note=_("report.white_spots.note")))

    values = {p.district.code: p.per_residents("events") for p in this.powiaty}
    report.map_title = _("site.insight.measure.residents",
                         indicator=_("site.insight.indicator.events"), year=year)
    report.map_svg = choropleth(layout(ctx.region), values, title=report.map_title,
                                description=_("site.insight.map_description", region=ctx.region.name),
                                no_data=_("site.insight.no_data"),
                                fmt=lambda v: format_amount(v, lang, decimals=1), ident="report-map")
    report.tables.append(Table("map", report.map_title,
                               (_("report.powiat"), _("report.events"), _("site.insight.per_residents")),
                               tuple((p.district.name, p.values["events"],
                                      round(p.per_residents("events") or 0.0, 2)) for p in this.powiaty)))
    facts = ctx.region.facts
    report.sources = [s for s in (facts.population_source, facts.boundaries_source) if s]
    return report


def _label(fn: Any, lang: str, code: str) -> str:
    return str(fn(code, lang))


def _org_type(code: str, lang: str) -> str:
    return t(lang, f"org.type.{code}") if code in ORG_TYPES else code


def _breakdown(key: str, title: str, insight: Insight, attribute: str, label: Any, column: str,
               lang: str) -> Table:
    total: Counter[str] = Counter()
    for powiat in insight.powiaty:
        total.update(getattr(powiat, attribute))
    return Table(key, title, (t(lang, "report.item"), column),
                 tuple((label(code), count) for code, count in total.most_common()), chart=True)


# --- outputs --------------------------------------------------------------------------------

_env = Environment(loader=PackageLoader("infranet.insight", "templates"),
                   autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)


def render_html(report: YearlyReport) -> str:
    lang = report.lang

    def number(value: Cell) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return format_amount(value, lang, decimals=0 if isinstance(value, int) else 2)

    return _env.get_template("yearly.html").render(
        report=report, lang=lang, _=partial(t, lang), number=number, bars=_bars)


def _bars(table: Table) -> list[tuple[str, float, Cell]]:
    """(label, share of the largest value 0..1, value) of a table drawn as bars."""
    values = [row[-1] for row in table.rows if isinstance(row[-1], int | float)]
    top = max(values, default=0) or 1
    return [(str(row[0]), float(row[-1]) / top if isinstance(row[-1], int | float) else 0.0,
             row[-1]) for row in table.rows]


def to_pdf(html: str) -> bytes:
    """The report's HTML as a PDF (WeasyPrint; seconds for a large network: run it in a
    thread from the event loop)."""
    from weasyprint import HTML

    return bytes(HTML(string=html).write_pdf())


def to_xlsx(report: YearlyReport) -> bytes:
    """One sheet per table: its title in the first row, the column names, the rows (numbers
    stay numbers, so a spreadsheet can add them up)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for table in report.tables:
        sheet = book.create_sheet(table.key[:31])
        sheet.append([table.title])
        sheet["A1"].font = Font(bold=True)
        sheet.append(list(table.columns))
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(list(row))
        if table.note:
            sheet.append([])
            sheet.append([table.note])
        sheet.column_dimensions["A"].width = max(
            [len(str(r[0])) for r in table.rows] + [len(table.columns[0]), 12]) + 2
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
