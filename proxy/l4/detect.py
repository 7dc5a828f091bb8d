"""Protocol detection: is the first thing the client sends an HTTP/1.x request line?

``classify`` is pure and answers HTTP1, OPAQUE or UNDECIDED (a prefix that could
still become a request line). ``sniff`` reads until the answer is decided, the
limit is reached or the timeout expires; silence until the timeout means a
server-speaks-first protocol, which is opaque.

The limit is 8 KiB, the request line nginx and Apache accept by default: long query
strings are common and still deserve routing, retries and metrics. A method, a space
and 8 KiB of target characters with no line end is no binary protocol, so a prefix
that is still a request line's when the limit is reached counts as HTTP/1 (the codec
then judges the whole head, up to its own limit).

Silence is judged by what the client sent, not by when the event loop got to it. A
loop busy for longer than the timeout runs the timer before it reads bytes that came
in time. So on timeout ``sniff`` lets the loop poll once more and takes what that
read; bytes there mean the client spoke, and sniffing goes on.
"""

from __future__ import annotations

import asyncio
import enum
import re

DEFAULT_DETECT_TIMEOUT = 0.1
SNIFF_LIMIT = 8192  # bytes read before deciding (see above)
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
    if data.find(b"\n") >= 0 or _PARTIAL.fullmatch(data[:SNIFF_LIMIT]) is None:
        return Protocol.OPAQUE
    return Protocol.HTTP1 if len(data) >= SNIFF_LIMIT else Protocol.UNDECIDED


async def _already_read(reader: asyncio.StreamReader, limit: int) -> bytes:
    """What the loop has read for ``reader`` by the end of this pass, without waiting."""
    await asyncio.sleep(0)  # one more poll: bytes still in the socket get read now
    try:
        async with asyncio.timeout(0):  # returns at once if bytes are buffered
            return await reader.read(limit)
    except TimeoutError:
        return b""


async def sniff(
    reader: asyncio.StreamReader, timeout: float, limit: int = SNIFF_LIMIT
) -> tuple[Protocol, bytes]:
    """Read the client's first bytes until ``classify`` decides, or ``timeout`` passes
    with nothing from the client."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    data = b""
    verdict = Protocol.UNDECIDED
    while verdict is Protocol.UNDECIDED:
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise TimeoutError
            # StreamReader.read is cancel-safe: on timeout nothing is lost.
            async with asyncio.timeout(remaining):
                chunk = await reader.read(limit - len(data))
        except TimeoutError:
            chunk = await _already_read(reader, limit - len(data))
            if not chunk:
                break  # silence (or end of file): opaque
            deadline = loop.time() + timeout  # the client spoke in time; the loop was late
        if not chunk:
            break
        data += chunk
        verdict = classify(data)
    if verdict is Protocol.UNDECIDED:
        verdict = Protocol.OPAQUE
    return verdict, data
