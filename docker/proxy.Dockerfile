# The sidecar: runs as uid/gid 1337, the identity the capture rules never redirect,
# with no capabilities and a read-only root filesystem (nothing here writes to it).
#
# Build it with scripts/images: the project and its dependencies come in as wheels built
# on the host (the context's wheels/), and pip runs from its own wheel (pip.whl), so the
# build needs no network and leaves no pip, wheel or source in the image. BASE is any
# Debian bookworm image with python3 3.11; scripts/images makes one from Debian's
# packages when the public image cannot be pulled.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

RUN --mount=type=bind,source=wheels,target=/tmp/wheels \
    --mount=type=bind,source=pip.whl,target=/tmp/pip.whl \
    python3 /tmp/pip.whl/pip install --no-index --no-cache-dir --disable-pip-version-check \
        --break-system-packages --root-user-action=ignore /tmp/wheels/*.whl \
    && groupadd --gid 1337 mesh \
    && useradd --uid 1337 --gid 1337 --no-create-home --shell /usr/sbin/nologin mesh

USER 1337:1337
EXPOSE 15001 15006 15020
ENTRYPOINT ["mesh-proxy", "run"]
