"""``mesh-proxy validate FILE``: check a configuration and print every error.

Exit codes follow DESIGN.md: 0 when the file is valid, 2 when it is not (or the
command line is wrong). Errors go to stderr, one per line; the verdict to stdout.
"""

from __future__ import annotations

import argparse
import sys

from proxy.config.errors import ConfigError
from proxy.config.loading import load_config


def validate_main(argv: list[str]) -> int:
    """``argv`` is what follows ``validate`` on the command line."""
    parser = argparse.ArgumentParser(
        prog="mesh-proxy validate", description="Check a mesh configuration file."
    )
    parser.add_argument("file", metavar="FILE", help="YAML or JSON configuration")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 for --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        count = len(exc.errors)
        print(f"{args.file}: invalid ({count} error{'s' if count != 1 else ''})", file=sys.stderr)
        return 2
    print(f"{args.file}: ok ({len(config.services)} services, version {config.version[:12]})")
    return 0
