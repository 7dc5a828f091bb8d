# The init container: installs the capture rules in the pod's network namespace and
# exits. Needs NET_ADMIN and NET_RAW (see init-container/README.md).
FROM python:3.11-slim-bookworm

# iptables gives both iptables-legacy and iptables-nft; libip4tc2/libip6tc2 are what
# python-iptables (the iptc backend) loads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends iptables=1.8.9-2 libip4tc2=1.8.9-2 libip6tc2=1.8.9-2 iproute2=6.1.0-3 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY interceptor ./interceptor
COPY proxy ./proxy
COPY init-container/entrypoint.sh /usr/local/bin/mesh-init
RUN pip install --no-cache-dir . && chmod 0755 /usr/local/bin/mesh-init

ENTRYPOINT ["/usr/local/bin/mesh-init"]
