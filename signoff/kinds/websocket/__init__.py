"""[[websocket]] claims: heartbeats, idle clients closed, answering clients kept open, measured
with real WebSocket clients (`websockets`' sans-I/O protocol over a plain socket)."""
