"""The network sees itself: indicators per powiat, white spots, the support map and the
yearly evaluation, built from what the other components hold.

The component reads through the calendar's, the network's and the newsletter's functions
and owns no rule of theirs; the site, the bot and the CLI only call it. Its modules:

- `map_shapes`: the region's powiaty as shapes on a plane (real boundaries from the region
  file, else its tile layout)
- `map_svg`: a choropleth of one indicator as SVG (legend, a title per powiat for hover)
- `map_png`: the same map as a PNG for reports
"""
