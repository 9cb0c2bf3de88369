"""``devstack/probe-server`` image: a tiny HTTP server whose health the tests control with flags.

``/healthz`` always answers 200; ``/ready`` answers 503 until ``--ready-after``
seconds have passed, then 200; ``/`` reports who answered (pod IP and port),
so a test can tell which process a Service address reached.  ``--exit-after``
with ``--exit-code`` makes a container that crashes on schedule, and
``--term-delay`` one that is slow to honour SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe-server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ready-after", type=float, default=0.0, help="seconds before /ready answers 200")
    parser.add_argument("--exit-after", type=float, default=None, help="exit on its own after this many seconds")
    parser.add_argument("--exit-code", type=int, default=1)
    parser.add_argument("--term-delay", type=float, default=0.0, help="seconds to linger after SIGTERM")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/ready"):
                ready = time.monotonic() - started >= args.ready_after
                self._answer(200 if ready else 503, {"ready": ready})
            elif self.path.startswith("/healthz"):
                self._answer(200, {"ok": True})
            else:
                self._answer(200, {"podIP": os.environ.get("POD_IP", ""), "host": args.host, "port": args.port})

        def _answer(self, code: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *fmt_args: object) -> None:
            sys.stderr.write(f"{self.address_string()} {format % fmt_args}\n")

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"probe-server listening on {args.host}:{args.port}", flush=True)

    def on_term(signum: int, _frame: FrameType | None) -> None:
        def stop() -> None:
            time.sleep(args.term_delay)  # simulates a slow shutdown; this is the behaviour under test, not a wait
            print("probe-server: SIGTERM, exiting", flush=True)
            os._exit(0)

        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    if args.exit_after is not None:
        timer = threading.Timer(args.exit_after, lambda: os._exit(args.exit_code))
        timer.daemon = True
        timer.start()
    server.serve_forever(poll_interval=3600)  # no shutdown() caller: SIGTERM exits the process
    return 0


if __name__ == "__main__":
    sys.exit(main())
