"""The insight map: one shape per powiat, coloured by its band, with its figure on hover,
drawn from the shipped PRG boundaries, or as tiles for a region file without them."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from infranet.insight.map_png import SCALE, choropleth_png
from infranet.insight.map_shapes import layout
from infranet.insight.map_svg import BAND_COLOURS, NO_DATA_COLOUR, bands, choropleth
from infranet.region import Region, load_region

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region()


def _fmt(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


def _paths(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)  # noqa: S314  (our own output)
    return {p.get("data-teryt"): p for p in root.iter(f"{SVG}path") if p.get("data-teryt")}


def test_each_powiat_is_one_shape_in_the_band_of_its_value(region: Region) -> None:
    values: dict[str, float | None] = {p.code: float(i) for i, p in enumerate(region.powiaty)}
    values[region.get("elcki").code] = None  # no figure there
    svg = choropleth(layout(region), values, title="Wydarzenia", description="Mapa powiatów",
                     no_data="brak danych", fmt=_fmt)
    paths = _paths(svg)
    assert sorted(paths) == sorted(p.code for p in region.powiaty)
    assert paths[region.get("elcki").code].get("class") == "no-data"
    shown = [p for p in region.powiaty if values[p.code] is not None]
    lowest = min(shown, key=lambda p: values[p.code] or 0)
    highest = max(shown, key=lambda p: values[p.code] or 0)
    assert paths[lowest.code].get("class") == "band-0"
    assert paths[highest.code].get("class") == "band-4"
    hover = paths[region.get("olsztynski").code].find(f"{SVG}title")
    figure = _fmt(values[region.get("olsztynski").code] or 0)
    assert hover is not None and hover.text == f"olsztyński: {figure}"
    root = ET.fromstring(svg)  # noqa: S314  (our own output)
    assert root.get("role") == "img" and root.find(f"{SVG}title").text == "Wydarzenia"
    legend = [t.text for t in root.iter(f"{SVG}text")]
    assert legend[-1] == "brak danych" and len(legend) == 6


def test_names_and_titles_are_escaped_for_svg(region: Region) -> None:
    svg = choropleth(layout(region), {}, title="<script>alert(1)</script> & co",
                     description='"quoted"', no_data="<none>", fmt=_fmt)
    root = ET.fromstring(svg)  # noqa: S314  (ours; well-formed: nothing broke out)
    assert root.find(f"{SVG}title").text == "<script>alert(1)</script> & co"
    assert "<script>" not in svg
    assert {p.get("class") for p in _paths(svg).values()} == {"no-data"}


def test_bands_split_at_quantiles_and_equal_values_share_one() -> None:
    assert bands([]) == []
    assert len(bands([5.0, 5.0, 5.0])) == 1
    found = bands([float(v) for v in range(100)])
    assert len(found) == 5 and found[0].low == 0 and found[-1].high == 99


def test_a_region_without_boundaries_gets_a_tile_map(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text('name = "w"\nteryt = "22"\n[[subregions]]\nname = "s"\ncode = "PL633"\n'
                    'powiaty = [{ name = "m. Gdańsk", teryt = "2261", tile = [1, 0] },'
                    ' { name = "m. Gdynia", teryt = "2262", tile = [0, 0] }]\n', encoding="utf-8")
    region = load_region(path)
    drawn = layout(region)
    assert not drawn.real and {s.code for s in drawn.shapes} == {"2261", "2262"}
    gdansk = next(s for s in drawn.shapes if s.code == "2261")
    gdynia = next(s for s in drawn.shapes if s.code == "2262")
    assert gdynia.centre[0] < gdansk.centre[0]  # laid out as the file says
    assert sorted(_paths(choropleth(drawn, {"2261": 1.0}, title="t", description="d",
                                    no_data="-", fmt=_fmt))) == ["2261", "2262"]


def test_the_png_shows_each_powiat_in_its_colour(region: Region) -> None:
    drawn = layout(region)
    assert drawn.real  # the shipped PRG boundaries
    values: dict[str, float | None] = {p.code: float(i) for i, p in enumerate(region.powiaty)}
    elk = region.get("elcki").code
    values[elk] = None
    png = choropleth_png(drawn, values, title="Wydarzenia na 10 tys. mieszkańców",
                         no_data="brak danych", fmt=_fmt)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size[0] == int(drawn.width * SCALE)
    shape = next(s for s in drawn.shapes if s.code == elk)
    x, y = shape.centre
    pixel = image.getpixel((int(x * SCALE), int((y + 34) * SCALE)))
    assert "#{:02x}{:02x}{:02x}".format(*pixel) == NO_DATA_COLOUR
    darkest = max(region.powiaty, key=lambda p: values[p.code] or -1)
    shape = next(s for s in drawn.shapes if s.code == darkest.code)
    x, y = shape.centre
    pixel = image.getpixel((int(x * SCALE), int((y + 34) * SCALE)))
    assert "#{:02x}{:02x}{:02x}".format(*pixel) == BAND_COLOURS[-1]
