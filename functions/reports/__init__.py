"""Reports function: schedule or API -> compliance report (JSON, CSV, HTML) -> S3 -> presigned link."""
