"""``scripts/bench``: what the sidecar costs, measured side by side with direct and HAProxy.

The pure parts (parsing wrk and /proc output, medians and ratios, the targets, the
rendered configs) are separate modules tested without a network; ``stand`` builds
the namespaces and runs the processes, ``__main__`` alternates the configurations.
"""
