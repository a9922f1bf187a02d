"""A TTS engine over HTTP, standard library only: GET /health answers {"status": "ok", ...};
POST /synthesize with {"text": ..., "voice": ...} answers audio bytes (a real WAV header and
silence, or MPEG frames, as long as the text is: ~60 ms of audio per character)."""

from __future__ import annotations

import argparse
import json
import signal
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SAMPLE_RATE = 16_000
MS_PER_CHAR = 60
MPEG_FRAME = b"\xff\xfb\x90\x64" + b"\x00" * 413  # one 128 kbit/s, 44.1 kHz frame header + body


def wav(text: str) -> bytes:
    samples = max(1, len(text)) * SAMPLE_RATE * MS_PER_CHAR // 1000
    data = b"\x00\x00" * samples
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


def mp3(text: str) -> bytes:
    frames = max(1, len(text) * MS_PER_CHAR // 26)  # a frame is ~26 ms
    return MPEG_FRAME * frames


def serve(engine: str, content_type: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"a stand-in {engine} TTS engine")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    make = mp3 if content_type == "audio/mpeg" else wav

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict[str, Any]) -> None:
            self._send(status, json.dumps(doc).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {"status": "ok", "engine": engine})
            else:
                self._json(404, {"error": f"no {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/synthesize":
                self._json(404, {"error": f"no {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                text = json.loads(self.rfile.read(length) or b"{}")["text"]
            except (ValueError, KeyError, TypeError):
                self._json(400, {"error": 'expected a JSON body {"text": ...}'})
                return
            if not isinstance(text, str) or not text.strip():
                self._json(400, {"error": "text must be a non-empty string"})
                return
            self._send(200, make(text), content_type)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the harness keeps stderr for errors

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stderr.write(f"{engine} TTS stub on http://{args.host}:{args.port}\n")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
