"""``mesh-proxy inject -f FILE|- [--image-init I] [--image-proxy I] [--config-map NAME]``.

Like ``istioctl kube-inject``: Kubernetes YAML in, the same documents out on stdout
with the mesh added to every pod template. All input is read and injected before a
byte is written, so bad input (exit 2, the message names the document and the value)
prints nothing; a note per pod left as it was goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, TextIO

from proxy.inject.documents import InjectError, dump_documents, load_documents, pod_templates
from proxy.inject.sidecar import InjectOptions, inject_pod

PROG = "mesh-proxy inject"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InjectError(message)


def build_parser() -> argparse.ArgumentParser:
    defaults = InjectOptions()
    parser = _Parser(
        prog=PROG,
        description="Write Kubernetes YAML with the mesh-init init container and the "
        "mesh-proxy native sidecar added to every pod template (Pods, Deployments, "
        "StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs) to stdout.",
    )
    parser.add_argument("-f", "--filename", required=True, metavar="FILE|-", help="'-' = stdin")
    parser.add_argument("--image-init", default=defaults.image_init, metavar="IMAGE")
    parser.add_argument("--image-proxy", default=defaults.image_proxy, metavar="IMAGE")
    parser.add_argument(
        "--config-map",
        default=defaults.config_map,
        metavar="NAME",
        help="ConfigMap holding mesh.yaml, mounted at /etc/mesh (default %(default)s)",
    )
    return parser


def inject_text(text: str, source: str, opts: InjectOptions) -> tuple[str, list[str]]:
    """The injected YAML and one note per pod template (pure: no I/O)."""
    docs = load_documents(text, source)
    notes = [f"{pod.where}: {inject_pod(pod, opts)}" for pod in list(pod_templates(docs, source))]
    return dump_documents(docs), notes


def inject_main(argv: list[str], stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    """``argv`` is what follows ``inject`` on the command line."""
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        for flag in ("--image-init", "--image-proxy", "--config-map"):
            value = getattr(args, flag[2:].replace("-", "_"))
            if not value.strip() or any(ch.isspace() for ch in value):
                raise InjectError(f"{flag}: {value!r} is not an image or object name")
        opts = InjectOptions(args.image_init, args.image_proxy, args.config_map)
        if args.filename == "-":
            text, source = (stdin or sys.stdin).read(), "<stdin>"
        else:
            with open(args.filename, encoding="utf-8") as f:
                text, source = f.read(), args.filename
        injected, notes = inject_text(text, source, opts)
    except (OSError, UnicodeDecodeError) as e:
        print(f"{PROG}: {args.filename}: cannot read: {e}", file=sys.stderr)
        return 2
    except InjectError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    out.write(injected)
    return 0
