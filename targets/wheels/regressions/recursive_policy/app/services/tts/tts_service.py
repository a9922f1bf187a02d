"""The TTS service: Edge -> Coqui -> System -> text-only (the seed's fallback chain).

`get_engine()` returns the first engine of the chain that initializes; `synthesize(text)` asks
each engine in turn and returns what the first one that answered made, ending with text-only,
which always answers. A failed link is logged and named in the result's `fallbacks`.
"""

from __future__ import annotations

import logging
from typing import Any

from app.core.exceptions import TTSEngineError
from app.services.tts.fallback_tts import (
    CoquiTTS,
    EdgeTTS,
    SystemTTS,
    TextOnlyTTS,
    TTSEngine,
)

logger = logging.getLogger(__name__)


def audio_chain() -> list[TTSEngine]:
    """The engines that make audio, in the order they are tried."""
    return [EdgeTTS(), CoquiTTS(), SystemTTS()]


def get_engine() -> TTSEngine:
    """The first engine that initializes; text-only when none does."""
    failures: list[str] = []
    for engine in audio_chain():
        try:
            engine.initialize()
        except TTSEngineError as exc:
            logger.warning("TTS engine %s unavailable, trying the next: %s", engine.name, exc)
            failures.append(str(exc))
            continue
        return engine
    logger.warning("no audio TTS engine: answering with text only (%s)", "; ".join(failures))
    return TextOnlyTTS()


def synthesize(text: str) -> dict[str, Any]:
    """{"engine": "coqui", "audio_bytes": 1234, "format": "wav", "text": ..., "fallbacks": [...]}:
    the first engine that made audio, or text-only."""
    failures: list[str] = []
    for engine in audio_chain():
        try:
            audio = engine.synthesize(text)
        except TTSEngineError as exc:
            logger.warning("TTS engine %s failed, trying the next: %s", engine.name, exc)
            failures.append(str(exc))
            continue
        return _result(engine, text, audio, failures)
    text_only = TextOnlyTTS()
    return _result(text_only, text, text_only.synthesize(text), failures)


def _result(engine: TTSEngine, text: str, audio: bytes, failures: list[str]) -> dict[str, Any]:
    return {
        "engine": engine.name,
        "audio_bytes": len(audio),
        "format": engine.audio_format,
        "text": text,
        "fallbacks": failures,
    }
