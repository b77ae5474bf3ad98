"""The region's powiaty as shapes to draw: polygons in map units (0..WIDTH wide), from the
boundaries the region file names (WGS84 GeoJSON, one feature per powiat keyed by TERYT),
else squares on the tile layout the region file gives (`tile = [column, row]`).

Projection: equirectangular with longitudes shortened by the cosine of the region's middle
latitude. Over a voivodeship (about 2° of latitude) that keeps shapes true to within a few
per cent, which is all a choropleth needs, and it needs no projection library.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from infranet.region import Region

WIDTH = 640.0
MARGIN = 8.0
TILE = 80.0

Ring = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Shape:
    code: str  # TERYT
    name: str
    rings: tuple[Ring, ...]  # outer rings and holes alike; drawn with the even-odd rule
    centre: tuple[float, float]


@dataclass(frozen=True)
class MapLayout:
    shapes: tuple[Shape, ...]
    width: float
    height: float
    real: bool  # True: real boundaries; False: a tile map


def layout(region: Region) -> MapLayout:
    """The map of `region`: from its boundaries file when it has one that covers every
    powiat, else its tile layout."""
    path = region.facts.boundaries
    codes = tuple(sorted(p.code for p in region.powiaty))
    if path is not None:
        found = _from_boundaries(path, path.stat().st_mtime)
        if tuple(sorted(s.code for s in found.shapes)) == codes:
            return found
    return _tiles(region)


@lru_cache(maxsize=4)
def _from_boundaries(path: Path, _mtime: float) -> MapLayout:
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    polygons: dict[str, tuple[str, list[list[tuple[float, float]]]]] = {}
    for feature in features:
        geometry = feature["geometry"]
        parts = geometry["coordinates"] if geometry["type"] == "MultiPolygon" \
            else [geometry["coordinates"]]
        rings = [[(float(x), float(y)) for x, y in ring] for polygon in parts for ring in polygon]
        props = feature["properties"]
        polygons[str(props["teryt"])] = (str(props.get("name", "")), rings)
    points = [p for _, rings in polygons.values() for ring in rings for p in ring]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    shrink = math.cos(math.radians((north + south) / 2))
    scale = (WIDTH - 2 * MARGIN) / ((east - west) * shrink)
    height = (north - south) * scale + 2 * MARGIN

    def project(lon: float, lat: float) -> tuple[float, float]:
        return (round(MARGIN + (lon - west) * shrink * scale, 1),
                round(MARGIN + (north - lat) * scale, 1))

    shapes = []
    for code, (name, rings) in sorted(polygons.items()):
        projected = tuple(tuple(project(x, y) for x, y in ring) for ring in rings)
        shapes.append(Shape(code, name, projected, _centre(max(projected, key=_area))))
    return MapLayout(tuple(shapes), WIDTH, round(height, 1), True)


def _tiles(region: Region) -> MapLayout:
    shapes = []
    placed = [p for p in region.powiaty if p.tile is not None]
    if len(placed) != len(region.powiaty):  # no layout either: a row-by-row grid
        columns = max(1, math.ceil(math.sqrt(len(region.powiaty))))
        tiles = {p.code: (i % columns, i // columns) for i, p in enumerate(region.powiaty)}
    else:
        tiles = {p.code: p.tile for p in placed if p.tile is not None}
    for powiat in region.powiaty:
        column, row = tiles[powiat.code]
        x, y = MARGIN + column * TILE, MARGIN + row * TILE
        square = ((x, y), (x + TILE - 4, y), (x + TILE - 4, y + TILE - 4), (x, y + TILE - 4),
                  (x, y))
        shapes.append(Shape(powiat.code, powiat.name, (square,),
                            (x + (TILE - 4) / 2, y + (TILE - 4) / 2)))
    width = MARGIN * 2 + (max(t[0] for t in tiles.values()) + 1) * TILE
    height = MARGIN * 2 + (max(t[1] for t in tiles.values()) + 1) * TILE
    return MapLayout(tuple(shapes), width, height, False)


def _area(ring: Ring) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))) / 2


def _centre(ring: Ring) -> tuple[float, float]:
    """The centroid of a polygon (the mean of its points when it is degenerate)."""
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        cross = x1 * y2 - x2 * y1
        area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if abs(area) < 1e-9:
        return (sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring))
    return (round(cx / (3 * area), 1), round(cy / (3 * area), 1))
