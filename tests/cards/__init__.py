"""Tests of the model cards (hfsent/cards/)."""
