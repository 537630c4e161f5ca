"""Shared library of the audit trail: models, integrity, transport, settings and observability."""
