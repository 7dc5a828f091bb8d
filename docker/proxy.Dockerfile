# The sidecar: runs as uid/gid 1337, the identity the capture rules never redirect.
FROM python:3.11-slim-bookworm

WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY interceptor ./interceptor
COPY proxy ./proxy
RUN pip install --no-cache-dir . \
    && groupadd --gid 1337 mesh \
    && useradd --uid 1337 --gid 1337 --no-create-home --shell /usr/sbin/nologin mesh

USER 1337:1337
EXPOSE 15001 15006 15020
ENTRYPOINT ["mesh-proxy", "run"]
