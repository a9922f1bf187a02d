"""Coqui TTS stand-in: `python -m stubs.coqui_tts --port PORT` (WAV audio)."""

from __future__ import annotations

import sys

from stubs.engine_server import serve

if __name__ == "__main__":
    sys.exit(serve("coqui", "audio/wav"))
