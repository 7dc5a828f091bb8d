# The init container: installs the capture rules in the pod's network namespace and
# exits. Needs NET_ADMIN and NET_RAW (see init-container/README.md).
#
# Build it with scripts/images: the project and its dependencies come in as wheels built
# on the host (the context's wheels/), and pip runs from its own wheel (pip.whl), so the
# build needs no network. BASE is any Debian bookworm image with python3 3.11; the one
# scripts/images makes from Debian's packages already holds iptables and iproute2.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

# iptables gives both iptables-legacy and iptables-nft; libip4tc2/libip6tc2 are what
# python-iptables (the iptc backend) loads. Only fetched when the base lacks them, so a
# build from the offline base never reaches for the network.
RUN if ! command -v iptables-legacy-restore >/dev/null || ! command -v ip >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends iptables=1.8.9-2 libip4tc2=1.8.9-2 libip6tc2=1.8.9-2 iproute2=6.1.0-3 \
        && rm -rf /var/lib/apt/lists/*; \
    fi

COPY init-container/entrypoint.sh /usr/local/bin/mesh-init
RUN --mount=type=bind,source=wheels,target=/tmp/wheels \
    --mount=type=bind,source=pip.whl,target=/tmp/pip.whl \
    python3 /tmp/pip.whl/pip install --no-index --no-cache-dir --disable-pip-version-check \
        --break-system-packages --root-user-action=ignore /tmp/wheels/*.whl \
    && chmod 0755 /usr/local/bin/mesh-init

ENTRYPOINT ["/usr/local/bin/mesh-init"]
