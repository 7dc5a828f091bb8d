"""Black-box harness for the L7 (HTTP routing and resilience) network-namespace tests."""
