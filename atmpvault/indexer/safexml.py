"""Safe XML parsing for untrusted files: the only module that imports defusedxml.

Any DOCTYPE is refused, so no entity can be declared, expanded (billion laughs) or
fetched (XXE), and no external reference is followed; an undefined entity is an error,
never expanded. Names are ElementTree's: `{namespace}local`. Two ways in:

- `parse(data)`: the whole tree, for small documents such as an eCTD index.xml::

      root = safexml.parse(data)
      leaves = [safexml.attributes(e) for e in safexml.iter_local(root, "leaf")]

- `feed(data, target)`: events to a target's start/end/data as the parser meets them,
  nothing kept, for large documents (a DOCX body) whose text is wanted in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol
from xml.etree.ElementTree import Element, ParseError, TreeBuilder
from xml.parsers import expat

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import DefusedXMLParser

__all__ = [
    "UNSAFE",
    "Target",
    "UnsafeXml",
    "XmlError",
    "XmlProblem",
    "attributes",
    "feed",
    "iter_local",
    "local_name",
    "parse",
]


UNSAFE = "unsafe XML refused: DOCTYPE and ENTITY declarations are not allowed"


class XmlProblem(ValueError):
    """The bytes cannot be read safely as XML."""


class UnsafeXml(XmlProblem):
    """The XML declares a DOCTYPE or an entity, or refers to an external resource."""


class XmlError(XmlProblem):
    """The XML is not well-formed; the message reads like expat's, with the position.

    `reason` is expat's text alone (e.g. "mismatched tag"); `line` and `column` locate it.
    """

    def __init__(self, message: str, reason: str, line: int | None, column: int | None):
        super().__init__(message)
        self.reason = reason
        self.line = line
        self.column = column


class Target(Protocol):
    """What `feed` calls: ElementTree's parser target protocol."""

    def start(self, tag: str, attrib: dict[str, str]) -> None: ...

    def end(self, tag: str) -> None: ...

    def data(self, text: str) -> None: ...


def parse(data: bytes, doctype: bool = False) -> Element:
    """The root element of an XML document; raises UnsafeXml or XmlError.

    With `doctype`, a DOCTYPE naming an external DTD is let through (an eCTD index.xml
    has one); the DTD is never read, and entities stay refused.
    """
    root = _run(data, TreeBuilder(), forbid_dtd=not doctype)
    assert isinstance(root, Element)  # what TreeBuilder.close returns
    return root


def feed(data: bytes, target: Target) -> None:
    """Parse `data`, calling `target` for each start tag, end tag and run of text."""
    _run(data, target)


def local_name(name: str) -> str:
    """A tag or attribute name without its namespace: '{urn:x}leaf' -> 'leaf'."""
    return name.rpartition("}")[2]


def iter_local(root: Element, local: str) -> Iterator[Element]:
    """Every element under `root` (itself included) whose local name is `local`, in order."""
    # Element.iter matches whole names only; ElementPath's {*} skips the root.
    return (e for e in root.iter() if local_name(e.tag) == local)


def attributes(element: Element) -> dict[str, str]:
    """An element's attributes by local name: xlink:href is 'href'."""
    return {local_name(name): value for name, value in element.attrib.items()}


def _declared(exc: DefusedXmlException) -> str:
    if isinstance(exc, DTDForbidden):
        return f"it declares DOCTYPE {exc.name}"
    if isinstance(exc, EntitiesForbidden):
        return f"it declares ENTITY {exc.name}"
    if isinstance(exc, ExternalReferenceForbidden):
        return f"it refers to {exc.sysid}"
    return str(exc)


def _run(data: bytes, target: object, forbid_dtd: bool = True) -> object:
    parser = DefusedXMLParser(
        target=target, forbid_dtd=forbid_dtd, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        return parser.close()
    except DefusedXmlException as exc:
        raise UnsafeXml(f"{UNSAFE}: {_declared(exc)}") from exc
    except ParseError as exc:
        code = getattr(exc, "code", None)
        line, column = getattr(exc, "position", (None, None))
        reason = expat.ErrorString(code) if code else str(exc).partition(":")[0]
        raise XmlError(str(exc), reason, line, column) from exc
