"""Protocol detection: is the first thing the client sends an HTTP/1.x request line?

``classify`` is pure and answers HTTP1, OPAQUE or UNDECIDED (a prefix that could
still become a request line). ``sniff`` reads until the answer is decided, the
limit is reached or the timeout expires; silence until the timeout means a
server-speaks-first protocol, which is opaque.
"""

from __future__ import annotations

import asyncio
import enum
import re

DEFAULT_DETECT_TIMEOUT = 0.1
SNIFF_LIMIT = 1024  # like Linkerd: a request line longer than this is not worth waiting for
DEFAULT_OPAQUE_PORTS = frozenset({25, 587, 3306, 4444, 5432, 6379, 9300, 11211})


class Protocol(enum.Enum):
    HTTP1 = "http/1"
    OPAQUE = "tcp"
    UNDECIDED = "undecided"


# Methods are upper-case tokens in practice (RFC 9110 registry); being strict here keeps
# binary protocols that happen to start with letters out of the HTTP path.
_METHOD = rb"[A-Z][A-Z_-]{0,19}"
_REQUEST_LINE = re.compile(_METHOD + rb" [\x21-\x7e]+ HTTP/1\.[01]\r?\n")
# Every proper prefix of a request line (without its newline), as nested optional groups.
_PARTIAL = re.compile(
    _METHOD
    + rb"(?: (?:[\x21-\x7e]+(?: (?:H(?:T(?:T(?:P(?:/(?:1(?:\.(?:[01]\r?)?)?)?)?)?)?)?)?)?)?)?"
)


def classify(data: bytes) -> Protocol:
    """Decide from the bytes seen so far; pure, so it is tested with a case table."""
    if _REQUEST_LINE.match(data):
        return Protocol.HTTP1
    if not data:
        return Protocol.UNDECIDED
    if len(data) >= SNIFF_LIMIT or b"\n" in data or _PARTIAL.fullmatch(data) is None:
        return Protocol.OPAQUE
    return Protocol.UNDECIDED


async def sniff(
    reader: asyncio.StreamReader, timeout: float, limit: int = SNIFF_LIMIT
) -> tuple[Protocol, bytes]:
    """Read the client's first bytes until ``classify`` decides, or the timeout passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    data = b""
    verdict = Protocol.UNDECIDED
    while verdict is Protocol.UNDECIDED:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            # StreamReader.read is cancel-safe: on timeout nothing is lost.
            async with asyncio.timeout(remaining):
                chunk = await reader.read(limit - len(data))
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
        verdict = classify(data)
    if verdict is Protocol.UNDECIDED:
        verdict = Protocol.OPAQUE
    return verdict, data
