#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A loopback HTTP server for mkmachine's tests: serves files, honours Range, injects faults.

    python3 tests/tools/httpd.py --root DIR --port-file FILE [--log FILE]

Binds 127.0.0.1 on a free port and writes that port (decimal, then a newline) to FILE once it
accepts connections (written to a temporary name and renamed, so readers never see half of it).
Serves the regular files under DIR (GET and HEAD, HTTP/1.1 keep-alive). A "Range: bytes=N-" or
"bytes=N-M" request gets 206 with Content-Range; a start beyond the end gets 416. Paths that
leave DIR ("..", symlinks pointing out) get 404.

Faults are chosen by a URL path prefix; the rest of the path names the file served:

    /fault/NNN/PATH            always answer HTTP status NNN (404, 403, 500, 503, 408, 429, ...)
    /fault/NNN-once/PATH       status NNN on the first request for this URL path, then serve PATH
    /fault/truncate/PATH       200 with the full Content-Length but only the first half of the
                               body, then close; a request with a Range header is served normally
                               (so a client can resume)
    /fault/truncate-once/PATH  truncate on the first request for this URL path, then serve normally
    /fault/stall/PATH          headers and a few bytes, then hang for 30 s
    /fault/slow/PATH           the body (honouring Range) in 10 small chunks over about 1 s
    /fault/big/PATH            the file plus 4096 extra bytes, with a Content-Length saying so
    /fault/big-nolen/PATH      the file plus 4096 extra bytes, no Content-Length, then close
    /fault/big-range/PATH      like big-nolen, but a "bytes=N-" request gets 206 with
                               "Content-Range: bytes N-LAST/*" (size unknown) and the file from N on
                               plus 4096 extra bytes, no Content-Length, then close
    /fault/reset/PATH          close the connection without sending any response
    /fault/norange/PATH        ignore Range: always 200 with the whole file
    /fault/badrange/PATH       answer any Range request with 206 and the whole file
                               ("Content-Range: bytes 0-LAST/SIZE"), whatever start was asked
    /fault/redirect/PATH       302 to /PATH on this server
    /fault/redirect-file/PATH  302 to file://DIR/PATH (a client must refuse to follow it)
    /fault/redirect-loop/PATH  302 to the same URL, forever
    /fault/headers/ANY         200 with the request's headers as the body ("Name: value" lines)
    /fault/close/PATH          serve PATH (or its 404) normally, but with "Connection: close": no
                               keep-alive (systemd 252's systemd-pull sometimes never finishes a
                               download it restarted on a reused connection after a 404)

"-once" counters are kept per URL path (the whole path including the /fault/ prefix), so two
tests using different file names do not interfere.

With --log FILE every request is appended as one line: METHOD PATH RANGE, where RANGE is the
Range header's value or "-" (e.g. "GET /fault/truncate/a.bin bytes=5000-"). Lines are flushed
as they are written, so a test can read them as soon as the response is over.

The server exits on SIGTERM, on SIGINT, and when its parent process dies (it polls the parent id),
so a crashed test never leaves it behind. Standard library only.
"""

import argparse
import http.server
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse

EXTRA = 4096
STALL_SECONDS = 30


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, root, log):
        super().__init__(addr, handler)
        self.root = os.path.realpath(root)
        self.log = log
        self.lock = threading.Lock()
        self.counters = {}

    def count(self, path):
        """Number of requests seen for path before this one."""
        with self.lock:
            n = self.counters.get(path, 0)
            self.counters[path] = n + 1
            return n

    def log_request_line(self, method, path, rng):
        if not self.log:
            return
        with self.lock:
            self.log.write("%s %s %s\n" % (method, path, rng or "-"))
            self.log.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mkm-test-httpd"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: the request log is --log
        pass

    def end_headers(self):
        if getattr(self, "force_close", False):
            self.send_header("Connection", "close")
        super().end_headers()

    # --- helpers -------------------------------------------------------------------------------

    def resolve(self, rel):
        """The real path of a file under the root, or None."""
        rel = urllib.parse.unquote(rel).lstrip("/")
        if not rel or "\0" in rel:
            return None
        full = os.path.realpath(os.path.join(self.server.root, rel))
        if full != self.server.root and not full.startswith(self.server.root + os.sep):
            return None
        if not os.path.isfile(full):
            return None
        return full

    def parse_range(self, size):
        """(start, end) inclusive for a single "bytes=N-[M]" range, "bad" for unsatisfiable,
        None when absent or not understood (then the whole file is served)."""
        value = self.headers.get("Range")
        if not value:
            return None
        m = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", value)
        if not m:
            return None
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
        if start >= size or end < start:
            return "bad"
        return start, min(end, size - 1)

    def send_status_only(self, code):
        body = ("%d\n" % code).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def write_body(self, data, chunks=1, seconds=0.0):
        if self.command == "HEAD":
            return
        if chunks <= 1:
            self.wfile.write(data)
            return
        step = max(1, (len(data) + chunks - 1) // chunks)
        for i in range(0, len(data), step):
            self.wfile.write(data[i:i + step])
            self.wfile.flush()
            time.sleep(seconds / chunks)

    def serve(self, path, honour_range=True, chunks=1, seconds=0.0):
        with open(path, "rb") as f:
            data = f.read()
        size = len(data)
        rng = self.parse_range(size) if honour_range else None
        if rng == "bad":
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if rng:
            start, end = rng
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            data = data[start:end + 1]
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.write_body(data, chunks, seconds)

    # --- dispatch ------------------------------------------------------------------------------

    def handle_any(self):
        url_path = urllib.parse.urlsplit(self.path).path
        self.server.log_request_line(self.command, url_path, self.headers.get("Range"))
        fault, rest = None, url_path
        m = re.fullmatch(r"/fault/([^/]+)(/.*)", url_path)
        if m:
            fault, rest = m.group(1), m.group(2)
        self.force_close = fault == "close"
        if self.force_close:
            self.close_connection = True
            fault = None

        if fault == "reset":
            self.close_connection = True
            try:
                # SO_LINGER 0 turns close() into a RST: the client sees a reset, not a clean EOF.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            except OSError:
                pass
            return
        if fault == "redirect":
            return self.redirect(rest)
        if fault == "redirect-file":
            return self.redirect("file://" + os.path.join(self.server.root, rest.lstrip("/")))
        if fault == "redirect-loop":
            return self.redirect(url_path)
        if fault == "headers":
            body = "".join("%s: %s\n" % kv for kv in self.headers.items()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.write_body(body)

        m = re.fullmatch(r"(\d{3})(-once)?", fault or "")
        if m:
            if not m.group(2) or self.server.count(url_path) == 0:
                return self.send_status_only(int(m.group(1)))
            fault = None

        path = self.resolve(rest)
        if path is None:
            return self.send_status_only(404)

        if fault in ("truncate", "truncate-once"):
            first = self.server.count(url_path) == 0
            if fault == "truncate-once" and not first:
                return self.serve(path)
            if self.headers.get("Range") and fault == "truncate":
                return self.serve(path)
            with open(path, "rb") as f:
                data = f.read()
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.write_body(data[:len(data) // 2])
            return
        if fault == "stall":
            with open(path, "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.write_body(data[:16])
            self.wfile.flush()
            time.sleep(STALL_SECONDS)
            self.close_connection = True
            return
        if fault == "slow":
            return self.serve(path, chunks=10, seconds=1.0)
        if fault in ("big", "big-nolen", "big-range"):
            with open(path, "rb") as f:
                data = f.read() + b"X" * EXTRA
            m = re.fullmatch(r"\s*bytes=(\d+)-\s*", self.headers.get("Range") or "")
            if fault == "big-range" and m and int(m.group(1)) < len(data):
                start = int(m.group(1))
                self.close_connection = True
                self.send_response(206)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Range", "bytes %d-%d/*" % (start, len(data) - 1))
                self.send_header("Connection", "close")
                self.end_headers()
                return self.write_body(data[start:])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if fault == "big":
                self.send_header("Content-Length", str(len(data)))
            else:
                self.close_connection = True
                self.send_header("Connection", "close")
            self.end_headers()
            self.write_body(data)
            return
        if fault == "norange":
            return self.serve(path, honour_range=False)
        if fault == "badrange" and self.headers.get("Range"):
            with open(path, "rb") as f:
                data = f.read()
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-%d/%d" % (len(data) - 1, len(data)))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.write_body(data)
        if fault == "badrange":
            return self.serve(path)
        if fault is not None:
            return self.send_status_only(400)
        return self.serve(path)

    def do_GET(self):
        try:
            self.handle_any()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_HEAD = do_GET


def watch_parent(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()

    log = open(args.log, "a", encoding="utf-8") if args.log else None
    srv = Server(("127.0.0.1", 0), Handler, args.root, log)
    port = srv.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
