"""One botocore configuration for every AWS call the functions make: bounded timeouts and retries.

botocore's defaults wait 60 s to connect and 60 s per read, longer than most of our Lambda timeouts,
so a stalled endpoint would eat the whole invocation instead of failing fast into a retry or a DLQ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from botocore.config import Config

CONNECT_TIMEOUT_SECONDS: Final = 3
READ_TIMEOUT_SECONDS: Final = 20  # a multipart part of a large report CSV must fit
MAX_ATTEMPTS: Final = 3


def aws_config(**overrides: Any) -> Config:
    """Timeouts and standard-mode retries for a boto3 client, plus any per-client settings."""
    from botocore.config import Config  # imported here: importing the layer stays cheap

    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        **overrides,
    )
