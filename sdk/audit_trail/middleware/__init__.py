"""Web framework middleware that records every request as an audit event.

`audit_trail.middleware.flask.FlaskAuditMiddleware` (WSGI, Flask) and
`audit_trail.middleware.asgi.AuditASGIMiddleware` (FastAPI, Starlette, any ASGI app). Each module
imports only its own framework, and only when it is imported itself.
"""
