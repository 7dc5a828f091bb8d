"""Writes tests/data/http1_corpus.json: HTTP/1 byte streams, valid, edge and hostile.

Run ``python -m tests.support.corpus_gen`` from the repository root after a deliberate
change of verdict; it also writes docs/http1-verdicts.md, the cases by class with
their verdicts (the README's section). Every case is built here from a few templates
and one variation each, grouped by class (issue 14's list); its ``expect`` is the h11
codec's verdict, and the script refuses to write the file while any codec in
``CODECS`` disagrees on any chunking, so the checked-in verdicts are the shared ones.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from proxy.http.codec import CODECS
from tests.support.corpus_cases import (
    Case,
    chunks,
    controls,
    framing,
    limits,
    line_endings,
    names,
    pipelines,
    request_lines,
    targets,
    truncations,
    valid,
)
from tests.support.corpus_responses import reasons, response, response_framing, responses
from tests.support.http1_fuzz import CORPUS
from tests.support.http1_verdict import esc, verdict

DOC = CORPUS.parents[2] / "docs" / "http1-verdicts.md"


def cases() -> Iterator[Case]:
    """Every case, unjudged, with its id and class."""
    groups = {
        "valid requests": valid(),
        "request framing: Content-Length and Transfer-Encoding": framing(),
        "line endings and obs-fold": line_endings(),
        "header names and whitespace before the colon": names(),
        "control characters": controls(),
        "chunked bodies": chunks(),
        "request targets": targets(),
        "request lines and versions": request_lines(),
        "pipelined requests": pipelines(),
        "requests cut short": truncations(),
    }
    for klass, group in groups.items():
        for label, data in group:
            yield {"id": label, "class": klass, "role": "server", "data": esc(data)}
    for label, data, max_head in limits():
        klass = "head and line size limits"
        yield {
            "id": label,
            "class": klass,
            "role": "server",
            "data": esc(data),
            "max_head": max_head,
        }
    for label, data in [*response_framing(), *reasons()]:
        label = label if label.startswith("response") else f"response {label}"
        klass = "response heads and framing"
        yield {"id": label, "class": klass, "role": "client", "data": esc(data)}
    klass = "responses: 1xx, 204, 304, HEAD, close"
    for label, data, method in responses():
        label = f"response {label}"
        yield {"id": label, "class": klass, "role": "client", "data": esc(data), "method": method}
    upgraded = response(
        b"Upgrade: websocket",
        b"Connection: upgrade",
        body=b"\x81\x00",
        line=b"HTTP/1.1 101 Switching Protocols",
    )
    yield {"id": "upgrade accepted", "class": klass, "role": "client", "upgrade": True,
           "data": esc(upgraded)}  # fmt: skip


def build() -> list[Case]:
    built: list[Case] = []
    seen: set[str] = set()
    for case in cases():
        assert case["id"] not in seen, case["id"]
        seen.add(case["id"])
        case["expect"] = verdict(CODECS["h11"], case)
        for how in ("bytes", "random"):
            # A limit bounds what is buffered of an incomplete chunk line or trailer
            # block (h11's rule), so there the verdict depends on how bytes arrive.
            got = verdict(CODECS["h11"], case, how)
            if got != case["expect"]:
                assert case["class"] == "head and line size limits", (case["id"], how)
                case[f"expect_{how}"] = got
        for name, factory in CODECS.items():
            for how in ("whole", "bytes", "random"):
                got, want = verdict(factory, case, how), expected(case, how)
                if got != want:
                    sys.exit(f"{name} ({how}) disagrees on {case['id']!r}:\n{got}\n{want}")
        built.append(case)
    return built


def expected(case: Case, how: str) -> Any:
    """The verdict a case records for the chunking ``how``."""
    return case.get(f"expect_{how}", case["expect"])


def summary(result: dict[str, Any]) -> str:
    """A verdict in a few words, for the table."""
    if result["end"] == "error":
        return f"refused {result['status']}" + (" (cut short)" if result["truncated"] else "")
    kept = [m.get("keep_alive") for m in result["messages"]]
    words = f"accepted, {len(kept)} message" + ("s" if len(kept) != 1 else "")
    return f"{words}; then {result['end']}"


DOC_HEAD = """# HTTP/1 verdicts: what both codecs accept and refuse

Both HTTP/1 codecs (`llhttp`, `h11`) give every input the same verdict; the
stricter rule wins (`proxy/http/codec/h1grammar.py` states the grammar). Refused with
400: bare CR or LF line ends, obs-fold, control characters in a head, whitespace
before a colon, repeated or listed `Content-Length`, both `Content-Length` and
`Transfer-Encoding`, `Transfer-Encoding` from an HTTP/1.0 peer, versions other than
HTTP/1.0 and 1.1, methods llhttp does not know, `*` except for OPTIONS, a CONNECT
target that is not `host:port`, a missing or repeated Host. Refused with 501: a
`Transfer-Encoding` other than one `chunked`. A head over the limit: 431. Chunk
lines and trailers keep h11's rules (extensions up to the line end are dropped; an
incomplete line longer than the limit is 431). This table is generated from
`tests/data/http1_corpus.json` by `python -m tests.support.corpus_gen`; the suite
checks each case on both codecs, whole, byte by byte and in random pieces.
"""


def markdown(built: list[Case]) -> str:
    out = [DOC_HEAD]
    classes: dict[str, list[Case]] = {}
    for case in built:
        classes.setdefault(case["class"], []).append(case)
    for klass, group in classes.items():
        refused = sum(case["expect"]["end"] == "error" for case in group)
        out.append(f"\n## {klass} ({len(group)} cases, {refused} refused)\n")
        out.append("| case | role | verdict |\n|---|---|---|")
        for case in group:
            name = case["id"].replace("|", "\\|")
            out.append(f"| {name} | {case['role']} | {summary(case['expect'])} |")
    return "\n".join(out) + "\n"


def main() -> None:
    built = build()
    lines = ",\n".join(json.dumps(case, ensure_ascii=False) for case in built)
    CORPUS.write_text("[\n" + lines + "\n]\n")
    DOC.write_text(markdown(built))
    print(f"{len(built)} cases written to {CORPUS} and {DOC}")


if __name__ == "__main__":
    main()
