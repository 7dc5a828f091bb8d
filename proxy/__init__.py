"""meshproxy's sidecar proxy: a sans-I/O policy core behind a thin asyncio shell."""
