"""Example item functions for distmap jobs (importable as ``jobs.examples:<name>``)."""
