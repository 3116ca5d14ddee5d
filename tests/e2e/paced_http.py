#!/usr/bin/python3
"""The real servers' HTTP for the failover and scale-out scenarios: files
of DIRECTORY at once, except /big, which the server paces (32 KiB every
DELAY seconds, default 0.05): a long-lived connection whose pace is the
server's, not the client's (curl's --limit-rate reads in bursts from its
socket buffer).

Usage: paced_http.py DIRECTORY [DELAY]
"""

import functools
import http.server
import os
import sys
import time

DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/big":
            return super().do_GET()
        with open(os.path.join(self.directory, "big"), "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(0, len(data), 32768):
            self.wfile.write(data[i:i + 32768])
            self.wfile.flush()
            time.sleep(DELAY)

    def log_message(self, *args):
        pass


handler = functools.partial(Handler, directory=sys.argv[1])
http.server.ThreadingHTTPServer(("0.0.0.0", 80), handler).serve_forever()
