"""Edge TTS stand-in: `python -m stubs.edge_tts --port PORT` (MPEG audio)."""

from __future__ import annotations

import sys

from stubs.engine_server import serve

if __name__ == "__main__":
    sys.exit(serve("edge", "audio/mpeg"))
