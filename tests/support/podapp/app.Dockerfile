# The test pod's application (tests/netns/packaging): app.py on the sidecar's base,
# running as an ordinary uid (never 1337, whose traffic the rules leave alone).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
COPY app.py /app/app.py
USER 1000:1000
EXPOSE 9080
ENTRYPOINT ["python3", "/app/app.py"]
