"""Tests of fine-tuning (hfsent/finetune/)."""
