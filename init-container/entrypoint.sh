#!/bin/sh
# meshproxy init container: install the capture rules in the pod's network namespace,
# prove they redirect, and exit. All configuration comes from MESH_* env vars, read by
# mesh-interceptor itself (see README.md); validation is on unless MESH_VALIDATE says
# otherwise. Exit codes are mesh-interceptor's: 0 ok, 2 bad input (nothing changed),
# 3 apply failed (rolled back), 4 validation failed.
set -eu

: "${MESH_VALIDATE:=true}"
export MESH_VALIDATE

# MESH_INTERCEPTOR lets an image (or a test) run the tool another way, e.g.
# "python3 -m interceptor"; it is split on spaces on purpose.
# shellcheck disable=SC2086
exec ${MESH_INTERCEPTOR:-mesh-interceptor} install "$@"
