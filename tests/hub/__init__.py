"""Tests of publishing to the Hub (hfsent/hub/), against the fake Hub of tests/fixtures/hub_server.py."""
