"""Parse untrusted XML safely (no DTDs, no entity expansion) into ElementTree elements.

Every failure becomes a :class:`SourceError` naming the source, the location and the line/column.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from paperradar.errors import SourceError

__all__ = ["parse_xml", "text_of"]


def parse_xml(data: bytes, *, source: str, location: str) -> Element:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SourceError(
            f"expected bytes, got {type(data).__name__}", source=source, location=location
        )
    if not bytes(data).strip():
        raise SourceError("empty response body, expected XML", source=source, location=location)
    try:
        root: Element = safe_et.fromstring(bytes(data), forbid_dtd=True)
    except ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        raise SourceError(
            f"malformed XML at line {line}, column {col}: {exc}", source=source, location=location
        ) from exc
    except DefusedXmlException as exc:
        raise SourceError(
            f"XML refused for safety (DTD or entity declarations): {exc}",
            source=source,
            location=location,
        ) from exc
    except (ValueError, UnicodeError, LookupError) as exc:  # LookupError: unknown encoding="…"
        raise SourceError(f"undecodable XML: {exc}", source=source, location=location) from exc
    return root


def text_of(el: Element | None) -> str:
    """All text inside ``el`` (children included), or '' for a missing element."""
    if el is None:
        return ""
    return "".join(el.itertext())
