"""meshproxy's sidecar proxy: a sans-I/O policy core behind a thin asyncio shell.

Before any other module loads, ``proxy.compiled`` decides whether the mypyc-compiled
build of the per-request path runs (``BUILD`` says which, and why not).
"""

import os as _os

from proxy import compiled as _compiled

COMPILED, _why = _compiled.choose(_os.path.dirname(__path__[0]))
if not COMPILED:
    _compiled.use_source(__path__[0])
BUILD = "mypyc" if COMPILED else f"source ({_why})"
