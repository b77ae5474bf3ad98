"""The choropleth of `map_svg` as a PNG, for reports and slides that take no SVG.

Drawn with Pillow from the same shapes, bands and colours (no browser, no SVG renderer),
twice the map's size for print, with the legend below it. Text uses DejaVu Sans when the
system has it (every Polish letter), else Pillow's own font.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from infranet.insight.map_shapes import MapLayout
from infranet.insight.map_svg import (
    LEGEND_ROW,
    NO_DATA_COLOUR,
    band_of,
    bands,
    legend_label,
    palette,
)

SCALE = 2
FONTS = (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONTS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def choropleth_png(layout: MapLayout, values: Mapping[str, float | None], *, title: str,
                   no_data: str, fmt: Callable[[float], str]) -> bytes:
    found = bands([v for v in values.values() if v is not None])
    colours = palette(found)
    top = 34
    height = top + layout.height + LEGEND_ROW * (len(found) + 1) + 12
    image = Image.new("RGB", (int(layout.width * SCALE), int(height * SCALE)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8 * SCALE, 8 * SCALE), title, fill="#111827", font=_font(16 * SCALE))
    for shape in layout.shapes:
        value = values.get(shape.code)
        colour = NO_DATA_COLOUR if value is None else colours[band_of(value, found)]
        for ring in shape.rings:  # holes are other powiaty, drawn over it in their colour
            points = [(x * SCALE, (y + top) * SCALE) for x, y in ring]
            draw.polygon(points, fill=colour, outline="white", width=SCALE)
    font = _font(12 * SCALE)
    y = top + layout.height + 8
    rows = [(colours[i], legend_label(b, fmt)) for i, b in enumerate(found)] + [(NO_DATA_COLOUR, no_data)]
    for colour, label in rows:
        draw.rectangle((8 * SCALE, y * SCALE, 26 * SCALE, (y + 14) * SCALE), fill=colour)
        draw.text((32 * SCALE, (y + 1) * SCALE), label, fill="#111827", font=font)
        y += LEGEND_ROW
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
