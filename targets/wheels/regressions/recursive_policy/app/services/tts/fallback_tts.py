"""The TTS engines of the fallback chain (the seed's "Multi-tier fallback system").

EdgeTTS and CoquiTTS are HTTP engines (EDGE_TTS_URL, COQUI_TTS_URL): `initialize` asks their
GET /health, `synthesize` POSTs /synthesize; every request is bounded by TTS_ENGINE_TIMEOUT
(1 s), per connect and per read, so a hung engine costs that and the chain goes on. SystemTTS
is espeak-ng when it is on PATH (TTS_SYSTEM_ENGINE=off skips it; a missing espeak-ng is a
skipped link, not an error: the seed's "eSpeak not installed" errors). TextOnlyTTS always
works: the answer is the text, with no audio.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from typing import Any, ClassVar

from app.core import config
from app.core.exceptions import TTSEngineError

SYSTEM_BINARIES = ("espeak-ng", "espeak")
SYSTEM_TIMEOUT_S = 5.0

# environment proxies never apply: the engines are local services
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _engine_error(engine: str, exc: BaseException) -> TTSEngineError:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        kind = "refused"
    elif isinstance(reason, TimeoutError | socket.timeout):
        kind = "timeout"
    else:
        kind = "error"
    return TTSEngineError(f"{engine}: {kind}: {reason}", kind)


class TTSEngine:
    name: ClassVar[str]
    audio_format: ClassVar[str]

    def initialize(self) -> None:
        """Raise TTSEngineError when this engine cannot synthesize now."""

    def synthesize(self, text: str) -> bytes:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class _HttpEngine(TTSEngine):
    url_setting: ClassVar[str]
    voice: ClassVar[str]

    def __init__(self, url: str | None, timeout: float | None = None) -> None:
        self.url = url.rstrip("/") if url else None
        self.timeout = config.tts_engine_timeout() if timeout is None else timeout

    def _request(self, path: str, body: dict[str, Any] | None = None) -> tuple[str, bytes]:
        if self.url is None:
            raise TTSEngineError(f"{self.name}: {self.url_setting} is not set", "unavailable")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with _opener.open(request, timeout=self.timeout) as answer:
                return answer.headers.get_content_type(), answer.read()
        except (OSError, urllib.error.URLError) as exc:
            raise _engine_error(self.name, exc) from exc

    def initialize(self) -> None:
        _, raw = self._request("/health")
        try:
            healthy = json.loads(raw).get("status") == "ok"
        except (ValueError, AttributeError):
            healthy = False
        if not healthy:
            raise TTSEngineError(f"{self.name}: unhealthy: {raw[:80]!r}", "error")

    def synthesize(self, text: str) -> bytes:
        content_type, audio = self._request("/synthesize", {"text": text, "voice": self.voice})
        if not content_type.startswith("audio/") or not audio:
            raise TTSEngineError(f"{self.name}: no audio in the answer ({content_type})", "error")
        return audio


class EdgeTTS(_HttpEngine):
    name = "edge"
    audio_format = "mp3"
    url_setting = "EDGE_TTS_URL"
    voice = "en-AU-NatashaNeural"

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(config.edge_tts_url(), timeout)


class CoquiTTS(_HttpEngine):
    name = "coqui"
    audio_format = "wav"
    url_setting = "COQUI_TTS_URL"
    voice = "tts_models/en/ljspeech/tacotron2-DDC"

    def __init__(self, timeout: float | None = None) -> None:
        super().__init__(config.coqui_tts_url(), timeout)


class SystemTTS(TTSEngine):
    name = "system"
    audio_format = "wav"

    def __init__(self) -> None:
        found = (shutil.which(b) for b in SYSTEM_BINARIES)
        self.binary = next((path for path in found if path), None)

    def _usable(self) -> str:
        if not config.system_tts_enabled():
            raise TTSEngineError("system: turned off (TTS_SYSTEM_ENGINE=off)", "unavailable")
        if self.binary is None:
            raise TTSEngineError("system: espeak-ng is not installed", "unavailable")
        return self.binary

    def _run(self, *args: str) -> bytes:
        binary = self._usable()
        try:
            done = subprocess.run(
                [binary, *args], capture_output=True, timeout=SYSTEM_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TTSEngineError(f"system: {exc}", "error") from exc
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip()[:200]
            raise TTSEngineError(f"system: exit {done.returncode}: {error}", "error")
        return done.stdout

    def initialize(self) -> None:
        self._run("--version")

    def synthesize(self, text: str) -> bytes:
        audio = self._run("--stdout", "-v", "en", text)
        if not audio:
            raise TTSEngineError("system: espeak-ng wrote no audio", "error")
        return audio


class TextOnlyTTS(TTSEngine):
    """The end of the chain: always works; the answer is the text itself."""

    name = "text-only"
    audio_format = "none"

    def synthesize(self, text: str) -> bytes:
        return b""
