"""Tests of MLM pretraining (hfsent/pretrain/)."""
