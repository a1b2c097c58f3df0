"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a real S3 endpoint (moto's server).

It fails a chosen share of requests the way S3 does under load (503 SlowDown) or drops the
connection without an answer, answers 403 for keys marked forbidden, and deletes keys marked
"vanish" from the real server just before their first GET (an object deleted between listing and
reading), and answers 403 to writes of keys that match ``deny_put``. Everything else is forwarded
unchanged. Request counts are bounded by the test itself.
"""

from __future__ import annotations

import http.client
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
DENIED = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'


class FaultProxy:
    def __init__(self, upstream: str, *, fail_share: float = 0.2, reset_share: float = 0.05, seed: int = 0,
                 deny_put: str | None = None) -> None:
        self.upstream = urlparse(upstream)
        self.deny_put = deny_put  # PUTs of keys containing this answer 403 (a bucket policy denying writes)
        self.fail_share, self.reset_share = fail_share, reset_share
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "slowdown": 0, "reset": 0, "denied": 0, "vanished": 0}
        self.vanished: set[str] = set()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = unquote(urlparse(self.path).path)
                with proxy.lock:
                    proxy.counts["requests"] += 1
                    roll = proxy.rng.random()
                if proxy.deny_put and proxy.deny_put in path and self.command == "PUT":
                    proxy.counts["denied"] += 1
                    return self._reply(403, DENIED)
                if "forbidden" in path and self.command in ("GET", "HEAD"):
                    proxy.counts["denied"] += 1
                    return self._reply(403, DENIED)
                if roll < proxy.reset_share:
                    proxy.counts["reset"] += 1
                    self.close_connection = True
                    self.connection.close()  # no answer at all: a connection reset
                    return
                if roll < proxy.reset_share + proxy.fail_share:
                    proxy.counts["slowdown"] += 1
                    return self._reply(503, SLOWDOWN)
                if "vanish" in path and self.command == "GET" and path not in proxy.vanished:
                    proxy.vanished.add(path)
                    proxy.counts["vanished"] += 1
                    import boto3  # a real, signed delete on the real server

                    bucket, _, key = path.lstrip("/").partition("/")
                    boto3.client("s3", endpoint_url=upstream).delete_object(Bucket=bucket, Key=key)
                status, headers, data = self._forward(self.command, body, dict(self.headers))
                self.send_response(status)
                head = self.command == "HEAD"  # a HEAD answer keeps the object's own length
                for k, v in headers:
                    if k.lower() not in ("transfer-encoding", "connection") and (head or k.lower() != "content-length"):
                        self.send_header(k, v)
                if not head:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _reply(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _forward(self, method: str, body: bytes, headers: dict[str, str]):
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=30)
                try:
                    conn.request(method, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    return resp.status, resp.getheaders(), resp.read()
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
