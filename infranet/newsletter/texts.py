"""The newsletter's words in Polish and English: messages, e-mail and page texts.

Templates call `_("key")`; a branded template directory can reuse these keys
or write its own text.
"""

from __future__ import annotations

# Bumped whenever the consent wording below changes; stored with each subscriber.
CONSENT_VERSION = "2026-11-1"

