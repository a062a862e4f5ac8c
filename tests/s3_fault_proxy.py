"""An HTTP proxy in front of the moto S3 server that lets the first ``allow_writes`` write requests
(PUT / POST: PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload) through and
then fails every later write for good with ``500 InternalError``, as a bucket whose writes keep
failing would. Reads and deletes (GET, HEAD, DELETE, so also AbortMultipartUpload) still pass, so
a client can clean up after itself, unless ``fail_deletes`` makes DELETE fail too (an outage).

With ``share`` it is a flaky endpoint instead: any request fails with that probability (seeded),
answering ``500 InternalError`` or ``503 SlowDown`` in turn, as S3 does under load.
"""

from __future__ import annotations

import http.client
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAILURE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>injected: writes fail for good</Message></Error>"
)


class FaultProxy:
    def __init__(
        self, upstream: str, allow_writes: int, *, fail_deletes: bool = False, share: float = 0.0, seed: int = 0
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.share = share
        self.rng = random.Random(seed)
        self.flaky: list[str] = []
        self.allow_writes = allow_writes
        self.fail_deletes = fail_deletes  # a total outage: nothing can be cleaned up either
        self.writes = 0
        self.failed: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _flaky(self) -> bool:
                with proxy.lock:
                    if not proxy.share or proxy.rng.random() >= proxy.share:
                        return False
                    proxy.flaky.append(f"{self.command} {self.path}")
                    slow = len(proxy.flaky) % 2 == 0
                code, text = (503, b"SlowDown") if slow else (500, b"InternalError")
                body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>injected</Message></Error>" % text
                self.send_response(code)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return True

            def _handle(self) -> None:
                body = self._body()
                if self._flaky():
                    return
                if self.command in ("PUT", "POST") or (proxy.fail_deletes and self.command == "DELETE"):
                    with proxy.lock:
                        proxy.writes += 1
                        fail = proxy.writes > proxy.allow_writes
                        if fail:
                            proxy.failed.append(f"{self.command} {self.path}")
                    if fail:
                        self.send_response(500)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(FAILURE)))
                        self.end_headers()
                        self.wfile.write(FAILURE)
                        return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
