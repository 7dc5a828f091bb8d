"""CPU cost of the realistic L7 sidecar per 1000 requests (not a test; run by hand).

    BENCH_CHILD="-m scripts.benchlib.meshbench" python -m scripts.benchlib.enginebench N C

The same load and CPU accounting as ``enginebench.py``, but the child runs the handler the
server installs with ``--config``: ``MeshForwarder`` routing to a subset, retries
with a budget, outlier detection, peak-EWMA, the ``Observer`` recording Istio metrics
and an access log line per request (to /dev/null, through the same buffered writer).
``MESH_HTTP_CODEC`` picks the codec (default ``auto``, as the sidecar's flag does). To
attribute costs, ``NOLOG=1`` turns the access log off and ``NOOBS=1`` the observer;
``BENCH_LINES`` sets how many rows of a ``BENCH_PROFILE=1`` profile are printed.
"""

from __future__ import annotations

import os
import sys

from prometheus_client import CollectorRegistry

from scripts.benchlib import render
from scripts.benchlib.enginebench import serve_measured


def _config(ports: tuple[int, ...]) -> str:
    """``scripts/bench``'s L7 config, with its endpoints on ``ports`` of loopback (the
    bench has two, so peak-EWMA picks between two as it does there)."""
    return render.mesh_l7(render.Upstream(address="127.0.0.1", port=ports[0]), ports=ports)


def _serve(upstream_port: int, *more_ports: int) -> None:
    import uvloop

    from proxy.config import loads_config
    from proxy.http import HttpProxy, Limits
    from proxy.http.codec import codec_named
    from proxy.mesh import MeshDispatcher, MeshForwarder
    from proxy.mesh.runtime import Mesh
    from proxy.observe.runtime import Telemetry
    from proxy.process.overload import worker_overload

    async def main() -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        telemetry = Telemetry(CollectorRegistry(), workload_flag="bench", stdout_fd=devnull)
        config = loads_config(_config((upstream_port, *more_ports)))
        telemetry.apply_config(config)
        if os.environ.get("NOLOG"):
            telemetry.observer.access_log = None
        codec = codec_named(os.environ.get("MESH_HTTP_CODEC", "auto"))
        # The worker's overload guard, wired as ``mesh-proxy run`` wires it.
        overload = worker_overload(config.mesh.overload)
        mesh = Mesh(config, codec=codec, overload=overload)
        observer = None if os.environ.get("NOOBS") else telemetry.observer
        dispatcher = MeshDispatcher(mesh, observer=observer)
        forwarder = MeshForwarder(dispatcher, Limits(), codec=codec, overload=overload)
        proxy = HttpProxy(forwarder, Limits(), codec=codec, overload=overload)
        await serve_measured(proxy, upstream_port)

    uvloop.run(main())


if __name__ == "__main__":
    _serve(*(int(port) for port in sys.argv[1:]))
