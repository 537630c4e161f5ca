"""Shared test configuration: Powertools in test mode, a fake Lambda context, event helpers."""

from __future__ import annotations

import os

# Powertools reads these at import; set them before any function module is imported.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "audit-trail-tests")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "AuditTrailTests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_DEV", "false")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
