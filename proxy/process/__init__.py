"""The process shell: options, sockets, privileges, the event loop, workers, signals.

``launch`` turns ``RunOptions`` into one process or N forked workers; ``server`` runs
one process's listeners, admin and telemetry ports until it is told to drain.
"""
