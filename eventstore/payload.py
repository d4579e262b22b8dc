"""An event's payload as an operator reads it: its own key order, short fields first, long
ones folded.

jsonb stores an object's keys shorter-first, so a 156,000-character ``excerpt`` can push
``message`` and ``severity`` out of sight. ``append_streams`` records the payload's own
order (``eventstore.types.KEY_ORDER`` in the metadata, when it differs from jsonb's);
:func:`payload_fields` puts it back, then shows the short fields first (in that order)
and folds the long ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from eventstore.types import in_key_order

#: A field whose JSON text is longer than this is folded (its first characters shown).
FOLD_OVER = 200
#: A folded field shows at most this much when unfolded (the page stays light).
UNFOLDED_LIMIT = 20_000


@dataclass(frozen=True)
class PayloadField:
    """One top-level field of a payload, as text."""

    key: str
    text: str
    length: int

    @property
    def folded(self) -> bool:
        """Long: shown folded, its first characters in the summary."""
        return self.length > FOLD_OVER

    @property
    def summary(self) -> str:
        return self.text[:120] + "…" if self.folded else self.text

    @property
    def shown(self) -> str:
        """The text shown when unfolded (capped)."""
        return self.text[:UNFOLDED_LIMIT]

    @property
    def cut(self) -> bool:
        return self.length > UNFOLDED_LIMIT


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)


def payload_fields(data: Any, metadata: Any) -> list[PayloadField]:
    """The payload's fields in its own key order, the short ones first, the long ones
    (folded) after them. A payload that is not an object is one field, ``""``."""
    if not isinstance(data, dict):
        text = _text(data)
        return [PayloadField("", text, len(text))]
    fields = [
        PayloadField(str(key), text, len(text))
        for key, value in in_key_order(data, metadata).items()
        for text in [_text(value)]
    ]
    return [f for f in fields if not f.folded] + [f for f in fields if f.folded]


def payload_html(data: Any, metadata: Any) -> SafeString:
    """The payload as a table of fields: short ones first, long ones folded in a
    ``<details>`` (one click), everything escaped (payloads may hold HTML or script)."""
    rows = []
    for field in payload_fields(data, metadata):
        if field.folded:
            more = (
                format_html(
                    '<p class="help">Showing the first {} of {} characters.</p>',
                    UNFOLDED_LIMIT,
                    field.length,
                )
                if field.cut
                else ""
            )
            value = format_html(
                '<details class="payload-long"><summary>{} <small>({} characters)</small>'
                '</summary><pre class="payload-text">{}</pre>{}</details>',
                field.summary,
                field.length,
                field.shown,
                more,
            )
        else:
            value = format_html('<pre class="payload-text">{}</pre>', field.text)
        rows.append((field.key, value))
    body = format_html_join("", '<tr><th class="payload-key">{}</th><td>{}</td></tr>', rows)
    return format_html(
        '<table class="payload" style="width: 100%">{}</table><style>'
        "pre.payload-text {{ white-space: pre-wrap; overflow-wrap: anywhere; max-height: 30em;"
        " overflow: auto; margin: 0 }}</style>",
        body,
    )
