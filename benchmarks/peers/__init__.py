"""Peer contenders: each runs as ``python -m benchmarks.peers.<name> INPUT OUTPUT ...`` and prints
one JSON line."""
