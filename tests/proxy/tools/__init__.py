"""Test helpers for the proxy's network-namespace tests."""
