"""HTTP codecs behind one seam; the engine picks one by name.

``base`` states the rules every codec keeps and defines the neutral events;
each other module adapts one library and is the only one to import it.
"""

from __future__ import annotations

from proxy.http.codec.base import (
    CLOSED,
    END,
    NEED_DATA,
    PAUSED,
    Codec,
    CodecFactory,
    End,
    Event,
    HeaderItems,
    ProtocolError,
    RawHeaders,
    Request,
    Response,
    Role,
)
from proxy.http.codec.h11codec import H11Codec

CODECS: dict[str, CodecFactory] = {"h11": H11Codec}

try:  # httptools is optional at run time: without it, h11 serves alone
    from proxy.http.codec.llhttp import LlhttpCodec
except ImportError:  # pragma: no cover - exercised only where httptools is missing
    pass
else:
    CODECS["llhttp"] = LlhttpCodec


def codec_named(name: str) -> CodecFactory:
    """The codec called ``name``; ``auto`` is the fastest one installed."""
    if name == "auto":
        name = "llhttp" if "llhttp" in CODECS else "h11"
    try:
        return CODECS[name]
    except KeyError:
        known = ", ".join(["auto", *sorted(CODECS)])
        raise ValueError(f"unknown HTTP codec {name!r} (known: {known})") from None


__all__ = [
    "CLOSED",
    "CODECS",
    "END",
    "NEED_DATA",
    "PAUSED",
    "Codec",
    "CodecFactory",
    "End",
    "Event",
    "H11Codec",
    "HeaderItems",
    "ProtocolError",
    "RawHeaders",
    "Request",
    "Response",
    "Role",
    "codec_named",
]
