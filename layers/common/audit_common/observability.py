"""The one place that builds the logger, tracer and metrics every function uses.

Powertools reads its configuration from the environment (POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL ...), set per function in template.yaml.
Logs are structured JSON; metrics are CloudWatch EMF lines; traces go to X-Ray.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

__all__ = ["logger", "metrics", "tracer"]
