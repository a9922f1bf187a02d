"""A small web target for signoff's [[http]] tests: the same endpoints as a Flask (WSGI) app
and as a plain ASGI callable."""
