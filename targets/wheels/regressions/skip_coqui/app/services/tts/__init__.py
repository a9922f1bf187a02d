"""Text to speech: Edge -> Coqui -> System (espeak-ng) -> text-only (`tts_service`)."""
