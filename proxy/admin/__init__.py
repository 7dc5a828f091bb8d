"""The two local HTTP ports: admin (127.0.0.1:15000) and telemetry/health (:15020).

Both are served by ``httpmini``, a deliberately tiny HTTP/1.1 server, from plain
handler functions; they never share code with the data plane's HTTP engine.
"""
