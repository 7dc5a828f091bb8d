"""``PUT /config``: validate the body, answer with the errors or the new version.

With one process the document is swapped in directly. With ``--workers N`` each
worker is a separate process, so the worker that took the PUT validates it, writes it
to a per-run state file (atomically: temp file + rename) and swaps it in itself; every
worker watches that file like the ``--config`` file and loads it within a tick. The
last document renamed into place is the one every worker ends with.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

from proxy.admin.httpmini import Handler, Reply, Request
from proxy.reload.gcpause import gc_paused
from proxy.reload.store import ConfigStore, Loaded, OfferResult
from proxy.reload.watch import FileWatcher, Fingerprint

JSON = "application/json"
PUT_LABEL = "PUT /config"  # prefixes every error of a PUT document
STATE_FILE = "config.put"


class PutFanout:
    """The per-run state file through which a PUT reaches the other workers."""

    def __init__(self, state_dir: str, store: ConfigStore, interval: float) -> None:
        self.path = os.path.join(state_dir, STATE_FILE)
        self.watcher = FileWatcher(
            self.path,
            lambda: store.offer_file(self.path, "put"),
            seen=None,
            interval=interval,
            report_missing=False,  # no PUT yet
        )

    def publish(self, text: str) -> Fingerprint:
        """Write ``text`` into place atomically; returns the fingerprint it now has."""
        directory = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".config.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                # Taken from the temp file: after the rename another worker's PUT may
                # already have replaced the path, and that one must still be loaded.
                written = Fingerprint.of(os.fstat(f.fileno()))
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self.watcher.mark(written)
        return written


def _version(loaded: Loaded) -> dict[str, object]:
    return {
        "version": loaded.short,
        "sha256": loaded.version,
        "source": loaded.source,
        "loaded_at": loaded.loaded_at,
    }


def result_reply(result: OfferResult) -> Reply:
    body: dict[str, object]
    if result.result == "rejected":
        body = {
            "result": "rejected",
            "errors": list(result.errors),
            "in_force": _version(result.loaded),
        }
        return Reply(400, (json.dumps(body, indent=2) + "\n").encode(), JSON)
    body = {"result": result.result, **_version(result.loaded)}
    return Reply(200, (json.dumps(body, indent=2) + "\n").encode(), JSON)


def put_config_handler(store: ConfigStore, fanout: PutFanout | None) -> Handler:
    async def put_config(request: Request) -> Reply:
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as e:
            return result_reply(
                store.reject([f"{PUT_LABEL}: body is not UTF-8 text: {e.reason}"], "put")
            )
        if fanout is None:
            return result_reply(await store.offer_text(text, "put", PUT_LABEL))
        with gc_paused():  # from the parse to the swap, as ConfigStore.offer_text does
            parsed = await store.parse_text(text, PUT_LABEL)
            if isinstance(parsed, list):
                return result_reply(store.reject(parsed, "put"))
            fanout.publish(text)
            return result_reply(store.accept(parsed, "put"))

    return put_config
