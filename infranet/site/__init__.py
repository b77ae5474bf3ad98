"""The network's public site: what residents and NGOs land on from the newsletter, a post or
a Telegram link, and what member organisations embed on their own websites.

Server-rendered pages (Jinja2, `templates/` beside this package), Polish by default and
English by a switch that keeps the page. The site reads through the calendar's and the
network's functions and owns no rule of theirs; the calendar keeps the feeds and the JSON
API. Its modules, one per kind of page:

- `pages`: the `Site` every route module gets (templates, language, the layout's links)
- `event_list`: `/` and `/events` (list by day, filters, search, month view)
- `event_page`: `/events/<id>` and `/events/<id>.ics`
- `syndication`: `/events.rss` and `/sitemap.xml`
- `proposal`: `/events/new`, the form for people without the bot
- `directory`: `/trainings` and `/organisations`
- `embed`: `/embed` (the one page other sites may frame) and the `/calendar` feed picker
- `service`: the component that puts them together
"""
