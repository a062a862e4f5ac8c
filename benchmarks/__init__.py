"""Benchmarks for distmap. Entry point: ``python -m benchmarks``."""
