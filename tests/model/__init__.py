"""Tests of the model itself: HfSentModel, its remote code, and the plain Trainer."""
