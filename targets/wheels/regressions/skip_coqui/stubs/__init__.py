"""Stand-ins for the network TTS engines (Edge, Coqui): small stdlib HTTP servers the claims
file starts as [target.dependencies] (`python -m stubs.edge_tts --port {port}`)."""
