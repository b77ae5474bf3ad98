"""A choropleth of one indicator over the region's powiaty, as SVG.

Each powiat is one `<path>` with the class of its value's band (`band-0` lightest ..
`band-4` darkest, `no-data` when the indicator has no value there, e.g. per 10,000
residents without a population figure) and a `<title>` ("ełcki: 12,5"), which browsers
show on hover and screen readers read. The legend names each band's range. The page puts
an accessible table of the same figures beside the map; the SVG itself is `role="img"`
with a title and a description, and is also served as a download for reports.

Bands: up to five (see `bands`), so that every band holds powiaty whatever the
indicator's scale; equal values share a band.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape

from infranet.insight.map_shapes import MapLayout, Shape

# Light to dark green (ColorBrewer "Greens", colour-blind safe), and grey for no data.
BAND_COLOURS = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
NO_DATA_COLOUR = "#d1d5db"
LEGEND_ROW = 22.0


@dataclass(frozen=True)
class Band:
    low: float
    high: float


def bands(values: list[float], count: int = 5) -> list[Band]:
    """Up to `count` bands covering `values`. With few different values, one band each
    (so a lone non-zero figure among zeros stands out); else split at quantiles of the
    different values, so that a value shared by many powiaty cannot swallow the others."""
    distinct = sorted(set(values))
    if len(distinct) <= count:
        return [Band(v, v) for v in distinct]
    edges = [distinct[(i * (len(distinct) - 1)) // count] for i in range(count)] + [distinct[-1]]
    return [Band(edges[i], edges[i + 1]) for i in range(count)]


def band_of(value: float, found: list[Band]) -> int:
    """The band holding `value`: the last whose lower edge it reaches."""
    index = 0
    for i, band in enumerate(found):
        if value >= band.low:
            index = i
    return index


def palette(found: list[Band]) -> list[str]:
    """A colour per band, spread over the whole scale (two bands are light and dark)."""
    step = (len(BAND_COLOURS) - 1) / max(1, len(found) - 1)
    return [BAND_COLOURS[round(i * step)] for i in range(len(found))]


def legend_label(band: Band, fmt: Callable[[float], str]) -> str:
    return fmt(band.low) if band.low == band.high else f"{fmt(band.low)} – {fmt(band.high)}"


def choropleth(layout: MapLayout, values: Mapping[str, float | None], *, title: str,
               description: str, no_data: str, fmt: Callable[[float], str],
               ident: str = "map") -> str:
    """The SVG document of `values` (TERYT -> figure) drawn on `layout`."""
    shown = [v for v in values.values() if v is not None]
    found = bands(shown)
    colours = palette(found)
    legend_rows = len(found) + 1
    height = layout.height + LEGEND_ROW * legend_rows + 12
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {layout.width:g} {height:g}" '
           f'width="{layout.width:g}" height="{height:g}" role="img" class="choropleth" '
           f'aria-labelledby="{ident}-title {ident}-desc">',
           f'<title id="{ident}-title">{escape(title)}</title>',
           f'<desc id="{ident}-desc">{escape(description)}</desc>',
           "<style>path{stroke:#ffffff;stroke-width:0.8;stroke-linejoin:round}"
           "path:hover{stroke:#111827;stroke-width:2}"
           + "".join(f".band-{i}{{fill:{c}}}" for i, c in enumerate(colours))
           + f".no-data{{fill:{NO_DATA_COLOUR}}}text{{font:12px sans-serif;fill:#111827}}</style>"]
    for shape in layout.shapes:
        value = values.get(shape.code)
        css = "no-data" if value is None else f"band-{band_of(value, found)}"
        figure = no_data if value is None else fmt(value)
        out.append(f'<path class="{css}" data-teryt="{escape(shape.code)}" fill-rule="evenodd" '
                   f'd="{_path(shape)}"><title>{escape(shape.name)}: {escape(figure)}</title></path>')
    y = layout.height + 8
    for i, band in enumerate(found):
        out.append(_legend_row(y, f"band-{i}", legend_label(band, fmt)))
        y += LEGEND_ROW
    out.append(_legend_row(y, "no-data", no_data))
    out.append("</svg>")
    return "\n".join(out)


def _legend_row(y: float, css: str, label: str) -> str:
    return (f'<g class="legend"><path class="{css}" d="M8 {y:g}h18v14h-18z"/>'
            f'<text x="32" y="{y + 11:g}">{escape(label)}</text></g>')


def _path(shape: Shape) -> str:
    return " ".join("M" + " ".join(f"{x:g} {y:g}" for x, y in ring[:-1]) + "Z"
                    for ring in shape.rings)
