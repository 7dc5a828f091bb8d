# Shared by scripts/test, scripts/demo, scripts/lint, scripts/bench: make sure the
# machine has the Debian packages and the venv the project needs. Idempotent and
# quiet when everything is already there.
#
# The venv lives outside /root and is built from Debian's /usr/bin/python3 because
# the proxy runs as uid 1337, which can neither execute nor import anything under
# /root (mode 0700). The package is installed (not editable) for the same reason.

MESH_VENV=${MESH_VENV:-/opt/meshproxy/venv}
MESH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export MESH_VENV MESH_ROOT

ensure_apt() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== apt-get install ${missing[*]}" >&2
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] \
     || [ -n "${MESH_APT_UPDATE:-}" ]; then
    apt-get update -qq >&2
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  }
}

# ensure_venv [extras]: create the venv and (re)install the project into it, compiled
# (setup.py, proxy/compiled.py): reinstalled only when a source changed. With
# MESH_INSTALL_PURE=1 the copy in the venv is plain Python (scripts/test: the tests
# run the checkout, compiled in place by scripts/build; this spares a second compile).
ensure_venv() {
  local extras=${1:-test}
  ensure_apt gcc python3-dev  # mypyc compiles the per-request path into C extensions
  if [ ! -x "$MESH_VENV/bin/python" ]; then
    echo "== creating venv $MESH_VENV" >&2
    mkdir -p "$(dirname "$MESH_VENV")"
    /usr/bin/python3 -m venv "$MESH_VENV"
    "$MESH_VENV/bin/pip" install -q --upgrade pip setuptools wheel >&2
  fi
  local stamp="$MESH_VENV/.deps-$extras"
  local want
  want=$(cat "$MESH_ROOT/setup.cfg" | sha256sum | cut -c1-16)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "== installing dependencies into $MESH_VENV" >&2
    # (pure: the compiled build below needs mypy, which this installs)
    MESH_PURE=1 "$MESH_VENV/bin/pip" install -q "$MESH_ROOT[$extras]" >&2
    echo "$want" > "$stamp"
  fi
  local built="$MESH_VENV/.installed"
  local sources
  sources=$(cd "$MESH_ROOT" && find proxy interceptor -name '*.py' -print0 | sort -z \
    | xargs -0 cat setup.cfg setup.py | sha256sum | cut -c1-16)
  local pure=${MESH_INSTALL_PURE:-}
  sources="$sources${pure:+-pure}"
  if [ ! -f "$built" ] || [ "$(cat "$built")" != "$sources" ]; then
    local how="compiling its per-request path"; [ -z "$pure" ] || how="plain Python"
    echo "== installing meshproxy into $MESH_VENV ($how)" >&2
    MESH_PURE=$pure "$MESH_VENV/bin/pip" install -q --no-deps --no-build-isolation --force-reinstall "$MESH_ROOT" >&2
    echo "$sources" > "$built"
  fi
  chmod -R a+rX "$(dirname "$MESH_VENV")"
}
