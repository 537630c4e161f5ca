"""The local stack: the whole product on one machine, no Docker and no cloud account.

`audit-trail local` runs it from a terminal; tests and scripts use it in-process:

    from audit_trail.local import LocalStack

    with LocalStack(database_url=url, port=0) as stack:
        ...  # stack.api_url, stack.database_url, stack.moto_endpoint
"""

from audit_trail.local.stack import DEFAULT_DATA_DIR, LocalStack, StackConfig
from audit_trail.local.state import read_state

__all__ = ["DEFAULT_DATA_DIR", "LocalStack", "StackConfig", "read_state"]
