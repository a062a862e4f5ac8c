"""Length-prefixed messages over a stream socket, with large byte payloads sent raw.

A message is a small pickled header plus zero or more blobs. Blobs (chunk payloads, encoded
result records) travel as raw bytes and are received with one ``recv_into`` copy each, so the
megabytes of a chunk are never pickled, buffered twice, or re-assembled.
"""

from __future__ import annotations

import contextlib
import pickle
import socket
import struct
from typing import Any

_LEN = struct.Struct("!I")


def send_msg(
    sock: socket.socket, header: Any, blobs: tuple[bytes | bytearray | memoryview, ...] = ()
) -> None:
    head = pickle.dumps((header, [len(b) for b in blobs]), protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LEN.pack(len(head)) + head)
    for blob in blobs:
        if len(blob):
            sock.sendall(blob)


def _recv_exact(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("connection closed")
        got += k
    return buf


def recv_msg(sock: socket.socket) -> tuple[Any, list[bytearray]]:
    (n,) = _LEN.unpack(_recv_exact(sock, _LEN.size))
    header, sizes = pickle.loads(_recv_exact(sock, n))
    return header, [_recv_exact(sock, size) for size in sizes]


def socket_pair(buffer_bytes: int = 4 << 20) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    for s in (a, b):
        for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, opt, buffer_bytes)
    return a, b
