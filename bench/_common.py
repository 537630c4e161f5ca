"""What the benchmarks share: the import path, the Lambda environment, the database plumbing, the output.

Importing this module puts the layer, the functions, the SDK and the repository root (for
tests.support) on `sys.path`, as pyproject's pytest `pythonpath` does, and sets the Powertools
environment the handlers read when their modules are imported: import it before any of those.
A benchmark script runs as `python bench/<name>.py`, so it first puts the repository root on the
path itself, then imports `bench._common`.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import psycopg
from psycopg import sql

ROOT: Final = Path(__file__).resolve().parents[1]
SOURCE_DIRS: Final = (ROOT / "layers" / "common", ROOT / "functions", ROOT / "sdk")
for _directory in (ROOT, *reversed(SOURCE_DIRS)):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))

# Powertools reads these when a handler module builds its logger, tracer and metrics.
POWERTOOLS_ENV: Final = {
    "POWERTOOLS_SERVICE_NAME": "audit-trail-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "AuditTrailBench",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_DEV": "false",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "AWS_DEFAULT_REGION": "us-east-1",
}
for _name, _value in POWERTOOLS_ENV.items():
    os.environ.setdefault(_name, _value)

from audit_common.db import reset_transport  # noqa: E402
from audit_common.settings import get_settings  # noqa: E402
from audit_trail.postgres import drop_database  # noqa: E402


class BenchError(RuntimeError):
    """The run went wrong (a refused request, a broken chain, nothing detected): no number is printed for it."""


# --------------------------------------------------------------------------------------------
# Database
# --------------------------------------------------------------------------------------------


def checkpoint(url: str) -> None:
    """Flush dirty pages so that one measurement does not pay for the previous one's writes."""
    with (
        psycopg.connect(url, autocommit=True) as conn,
        contextlib.suppress(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("checkpoint")


def server_facts(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select name, setting from pg_settings"
            " where name in ('server_version', 'synchronous_commit', 'fsync', 'shared_buffers')"
        ).fetchall()
    facts: dict[str, str] = {str(name): str(setting) for name, setting in rows}
    facts["shared_buffers"] = f"{int(facts['shared_buffers']) * 8 // 1024} MiB"
    return facts


def drop_databases(admin_url: str, names: Sequence[str], *, keep: bool) -> None:
    """Drop the benchmark's databases (after an error too), or say which were kept."""
    if keep:
        print(f"kept database{'s' if len(names) > 1 else ''} {' and '.join(names)}", file=sys.stderr)
        return
    for name in names:
        # A run cut short can leave its backend busy for a moment: DROP ... WITH (FORCE) waits only 5 s for it.
        for attempt in range(3):
            try:
                drop_database(admin_url, name)
                break
            except psycopg.Error as exc:
                if attempt == 2:
                    print(f"could not drop database {name} ({exc}); drop it by hand", file=sys.stderr)
                else:
                    time.sleep(2)


def point_handler_at(url: str) -> None:
    """Make the functions connect to `url` (their settings and connection are process-wide caches)."""
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    reset_transport()


# --------------------------------------------------------------------------------------------
# Process
# --------------------------------------------------------------------------------------------


def settle() -> None:
    """Collect, then freeze what is alive (the bench's pre-built input) out of the collector's sight.

    A Lambda process holds its modules and one request; this process also holds every pre-built
    event. Frozen objects are never scanned again, so the collector costs what it costs in Lambda.
    """
    gc.collect()
    gc.freeze()


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM (CI cancelling the job) unwinds like Ctrl-C, so the databases are still dropped.
    raise SystemExit(128 + signum)


def unwind_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that `finally` blocks (dropping the databases) still run."""
    signal.signal(signal.SIGTERM, _terminate)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def base_environment(facts: dict[str, str]) -> dict[str, Any]:
    """The header facts every benchmark prints: date, Python, the server and its durability settings."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "postgresql": facts["server_version"],
        "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded pgserver",
        "cpus": os.cpu_count(),
        "synchronous_commit": facts["synchronous_commit"],
        "fsync": facts["fsync"],
        "shared_buffers": facts["shared_buffers"],
    }


def environment_line(env: dict[str, Any]) -> str:
    """`Python ... | PostgreSQL ... | N CPUs | durability settings | load average at start`."""
    return (
        f"Python {env['python']} | PostgreSQL {env['postgresql']} ({env['database']}) | {env['cpus']} CPUs"
        f" | synchronous_commit={env['synchronous_commit']} fsync={env['fsync']}"
        f" shared_buffers={env['shared_buffers']} | load average at start {env['load_average_at_start']}"
    )


def format_table(headers: Sequence[str], lines: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines, strict=True)]

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(cells, widths, right, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(headers), rule, *(render(line) for line in lines)])


# --------------------------------------------------------------------------------------------
# Shared by the benchmarks that generate their data in SQL
# --------------------------------------------------------------------------------------------


def vacuum_analyze(url: str, table: str = "audit.audit_events") -> float:
    """`VACUUM ANALYZE` one table (`schema.table`); returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("vacuum analyze {}").format(sql.Identifier(*table.split("."))))
    return time.perf_counter() - started


def zipf_rank(u: float, users: int) -> int:
    """Zipf-like user rank 1..users from a uniform u: P(rank k) ~ ln((k + 1) / k), the top user ~9% of 2,000."""
    return min(users, math.floor(math.exp(u * math.log(users + 1))))


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1..99), inclusive method (as the tables print it); one value is its own percentile."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
