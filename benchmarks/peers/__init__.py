"""Peer contenders: each is ``python -m benchmarks.peers.<name> INPUT OUTPUT ...`` and prints one JSON line."""
