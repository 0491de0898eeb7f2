"""Parse untrusted XML safely (no DTDs, no entity expansion) into ElementTree elements.

Every failure becomes a :class:`SourceError` naming the source, the location and the line/column.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from paperradar.errors import SourceError

__all__ = ["parse_xml", "text_of"]

_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S
)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


def _html_page_error(data: bytes, source: str, location: str) -> SourceError | None:
    """An HTML page where XML was expected (an error or maintenance page, a login portal, a wrong
    URL) is named as such, with its title, instead of "malformed XML" or "DTD refused"."""
    head = data[:65536].lstrip(b"\xef\xbb\xbf")
    if not _HTML_START.match(head):
        return None
    m = _HTML_TITLE.search(head)
    title = " ".join(m.group(1).decode("utf-8", "replace").split())[:120] if m else ""
    return SourceError(
        "got an HTML page, not XML"
        + (f" ({title!r})" if title else "")
        + ": the service may be down or the URL may be wrong",
        source=source,
        location=location,
    )


def parse_xml(data: bytes, *, source: str, location: str) -> Element:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SourceError(
            f"expected bytes, got {type(data).__name__}", source=source, location=location
        )
    if not bytes(data).strip():
        raise SourceError("empty response body, expected XML", source=source, location=location)
    html = _html_page_error(bytes(data), source, location)
    if html is not None:
        raise html
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
    except (ValueError, UnicodeError) as exc:
        raise SourceError(f"undecodable XML: {exc}", source=source, location=location) from exc
    except LookupError as exc:  # <?xml encoding="no-such-codec"?>
        raise SourceError(
            f"XML declares an unknown encoding: {exc}", source=source, location=location
        ) from exc
    return root


def text_of(el: Element | None) -> str:
    """All text inside ``el`` (children included), or '' for a missing element."""
    if el is None:
        return ""
    return "".join(el.itertext())
