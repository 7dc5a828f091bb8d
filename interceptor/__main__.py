"""``python -m interceptor`` is ``mesh-interceptor``."""

from __future__ import annotations

import sys

from interceptor.cli import main

sys.exit(main())
