"""Simplify a region's powiat boundaries (GeoJSON from PRG, GUGiK) for the insight map.

    python scripts/simplify_boundaries.py IN.geojson OUT.geojson [--tolerance 0.004]

Each ring is simplified by Ramer-Douglas-Peucker with `tolerance` in degrees (0.004° is
about 300 m north-south: under a pixel on a 700-pixel map of a voivodeship) and rounded to
4 decimals; rings left with fewer than 4 points are dropped. Only `teryt` and `name` are
kept of each feature's properties. The map is drawn from the result at run time
(`infranet/insight/map_svg.py`), so another region ships its own file the same way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

Point = tuple[float, float]


def _distance(p: Point, a: Point, b: Point) -> float:
    """Distance of p from the segment a-b, in degrees (flat: fine at this scale)."""
    (x, y), (x1, y1), (x2, y2) = p, a, b
    dx, dy = x2 - x1, y2 - y1
    if dx == dy == 0:
        return float(((x - x1) ** 2 + (y - y1) ** 2) ** 0.5)
    t = max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
    return float(((x - x1 - t * dx) ** 2 + (y - y1 - t * dy) ** 2) ** 0.5)


def simplify(ring: list[Point], tolerance: float) -> list[Point]:
    keep = [False] * len(ring)
    keep[0] = keep[-1] = True
    stack = [(0, len(ring) - 1)]
    while stack:
        first, last = stack.pop()
        worst, index = 0.0, -1
        for i in range(first + 1, last):
            d = _distance(ring[i], ring[first], ring[last])
            if d > worst:
                worst, index = d, i
        if index >= 0 and worst > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [p for p, k in zip(ring, keep, strict=True) if k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.004)
    args = parser.parse_args()
    data = json.loads(args.source.read_text(encoding="utf-8"))
    features, before, after = [], 0, 0
    for feature in data["features"]:
        geometry = feature["geometry"]
        polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" \
            else [geometry["coordinates"]]
        kept = []
        for polygon in polygons:
            rings = []
            for ring in polygon:
                before += len(ring)
                small = [(round(x, 4), round(y, 4))
                         for x, y in simplify([(float(x), float(y)) for x, y in ring], args.tolerance)]
                if len(small) >= 4:
                    rings.append([list(p) for p in small])
                    after += len(small)
            if rings:
                kept.append(rings)
        props = feature["properties"]
        features.append({"type": "Feature",
                         "properties": {"teryt": props["teryt"], "name": props["name"]},
                         "geometry": {"type": "MultiPolygon", "coordinates": kept}})
    out = {"type": "FeatureCollection", "features": features}
    args.target.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n",
                           encoding="utf-8")
    print(f"{len(features)} features, {before} points -> {after}, "
          f"{args.target.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
