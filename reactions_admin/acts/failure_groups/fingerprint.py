"""Error fingerprints: failures grouped by exception type and a normalised message.

Numbers, ids (UUIDs, long hex) and quoted values are masked, so "prompt is 38,545
tokens" and "prompt is 40,112 tokens" fall in one group. Pure; no Django.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_HEX = re.compile(r"\b(?:0x)?(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b")
_QUOTED = re.compile(r"(?<!\w)'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")
_NUMBER = re.compile(r"[-+]?\d[\d,._]*")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Fingerprint:
    """An error's group: its id (12 hex characters), exception type and masked message."""

    id: str
    exception_type: str
    pattern: str


def fingerprint(error: str) -> Fingerprint:
    """The fingerprint of an error as recorded ("ExceptionType: message", first line)."""
    first = error.strip().splitlines()[0] if error.strip() else ""
    kind, sep, message = first.partition(": ")
    if not sep or " " in kind:
        kind, message = "", first
    masked = _UUID.sub("<id>", message)
    masked = _QUOTED.sub("<q>", masked)
    masked = _HEX.sub("<id>", masked)
    masked = _NUMBER.sub("<n>", masked)
    masked = _SPACES.sub(" ", masked).strip()
    digest = hashlib.sha256(f"{kind}\n{masked}".encode()).hexdigest()[:12]
    return Fingerprint(digest, kind, masked)
