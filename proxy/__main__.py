"""``python -m proxy run …`` is ``mesh-proxy run …``."""

from __future__ import annotations

import sys

from proxy.cli import main

sys.exit(main())
