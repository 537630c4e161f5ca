"""Retention function: nightly archive-then-redact past retention, legal holds, GDPR export and erasure."""
