"""Tests of inference (hfsent/inference/ and hfsent/endpoint_handler.py)."""
