"""The bounded in-memory buffer and the background thread that empties it in batches.

Policy (docs/sdk.md, "Buffer policy"):

- An event accepted by `log_event` stays in the buffer until the destination has stored it (or
  refused it as invalid): in-flight events count against `buffer_limit`, so memory is bounded by it.
- When the buffer is full, `block` makes `log_event` wait for room (at most `block_timeout_seconds`,
  then `BufferFullError`: that event was not kept and the caller knows it); `drop` refuses the new event
  at once, counts it in `stats.dropped` and warns once per burst (a burst ends when the buffer has
  drained below half).
- Delivery failures that a retry can fix (network, timeouts, 408/429/5xx, 404) are retried
  with exponential backoff and full jitter, forever while the logger is open, with the same event_ids:
  the API answers a replayed event `duplicate`, so a retry never writes an event twice.
- 401/403 (`AuthenticationError`) is a configuration error, not an outage: one ERROR names the status
  and the setting to check, the events stay buffered and are retried with a backoff capped at
  `AUTH_RETRY_MAX_SECONDS` (a token registered or rotated on the server side heals it without a
  restart), and while the credentials are refused a full buffer makes `log_event` raise
  `BufferFullError` at once instead of blocking the application for `block_timeout_seconds`.
- `close()` (and interpreter exit) keeps delivering for up to `close_timeout_seconds`; what is still
  undelivered then is reported (log error, `stats.undelivered`, `pending_events()`), never silently lost.

Hand-written rather than a queue library: the flusher must peek at a batch, keep it counted while it
is in flight and remove it only after the destination acknowledged it, which `queue.Queue` cannot do.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from audit_common.models import AuditEventIn
from audit_trail.backend import Backend
from audit_trail.config import OverflowPolicy
from audit_trail.errors import AuthenticationError, BufferFullError, DeliveryError, LoggerClosedError

log = logging.getLogger("audit_trail")

MAX_REJECTED_KEPT = 1000
AUTH_RETRY_MAX_SECONDS = 60.0
"""Backoff cap while the API refuses our credentials: slow enough not to hammer it (each refusal is
itself recorded by the API), fast enough that a fixed token resumes delivery within a minute."""


def backoff_delay(
    attempt: int, base: float, cap: float, rng: Callable[[float, float], float] = random.uniform
) -> float:
    """Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^(attempt-1))].

    Full jitter spreads many clients recovering from one outage best (AWS Architecture Blog,
    "Exponential Backoff And Jitter"); two lines, so no library for it.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return rng(0.0, ceiling)


@dataclass
class BufferStats:
    """Counters an application can export as metrics (`logger.stats`)."""

    accepted: int = 0
    delivered: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dropped: int = 0
    rejected: int = 0
    retries: int = 0
    batches: int = 0
    undelivered: int = 0
    last_error: str | None = None
    credentials_refused: str | None = None
    """While the API refuses our credentials (401/403): why, with the setting to check; else None."""
    rejected_events: list[tuple[AuditEventIn, str]] = field(default_factory=list)


class EventBuffer:
    """A bounded FIFO of events; the flusher removes events only once they were delivered."""

    def __init__(
        self, limit: int, policy: OverflowPolicy, block_timeout: float | None, stats: BufferStats | None = None
    ) -> None:
        self.limit = limit
        self.policy = policy
        self.block_timeout = block_timeout
        self.stats = stats or BufferStats()
        self._events: deque[AuditEventIn] = deque()
        self.cond = threading.Condition()
        self.closed = False
        self.flush_requested = False
        self._dropping = False
        self._dropped_in_burst = 0
        self.refused: AuthenticationError | None = None
        """Set by the flusher while the destination refuses our credentials."""

    def __len__(self) -> int:
        with self.cond:
            return len(self._events)

    def offer(self, event: AuditEventIn) -> bool:
        """Add the event if there is room now; False (nothing counted) when full."""
        with self.cond:
            if self.closed:
                raise LoggerClosedError("the audit logger is closed")
            if len(self._events) >= self.limit:
                return False
            self._accept(event)
            return True

    def put(self, event: AuditEventIn) -> bool:
        """Add the event under the overflow policy: True when kept, False when dropped; may block or raise."""
        with self.cond:
            if self.closed:
                raise LoggerClosedError("the audit logger is closed")
            if len(self._events) < self.limit:
                self._accept(event)
                return True
            if self.policy is OverflowPolicy.DROP:
                self._drop()
                return False
            if self.refused is not None:
                # Waiting cannot help until someone fixes the token: do not stall the application.
                raise self._full_while_refused(event)
            if not self.cond.wait_for(
                lambda: len(self._events) < self.limit or self.closed or self.refused is not None, self.block_timeout
            ):
                raise BufferFullError(
                    f"the audit buffer stayed full ({self.limit} events) for {self.block_timeout} s: "
                    f"the destination is down or too slow; event {event.event_id} was not kept"
                )
            if self.closed:
                raise LoggerClosedError("the audit logger closed while waiting for room")
            if len(self._events) >= self.limit:
                raise self._full_while_refused(event)
            self._accept(event)
            return True

    def _full_while_refused(self, event: AuditEventIn) -> BufferFullError:
        error = BufferFullError(
            f"the audit buffer is full ({self.limit} events) because the API refuses our credentials "
            f"({self.refused}); event {event.event_id} was not kept"
        )
        error.__cause__ = self.refused
        return error

    def _accept(self, event: AuditEventIn) -> None:
        self._events.append(event)
        self.stats.accepted += 1
        if self._dropping and len(self._events) < self.limit // 2:
            log.warning(
                "audit buffer has room again; %d event(s) were dropped while it was full", self._dropped_in_burst
            )
            self._dropping = False
            self._dropped_in_burst = 0
        self.cond.notify_all()

    def _drop(self) -> None:
        self.stats.dropped += 1
        self._dropped_in_burst += 1
        if not self._dropping:
            self._dropping = True
            log.warning(
                "audit buffer full (%d events; destination down or slow): dropping new events "
                "(overflow_policy=drop); stats.dropped counts them",
                self.limit,
            )

    def peek(self, count: int) -> list[AuditEventIn]:
        """The oldest `count` events, left in place."""
        with self.cond:
            return [self._events[i] for i in range(min(count, len(self._events)))]

    def remove(self, count: int) -> None:
        """Forget the oldest `count` events (delivered or refused) and wake anyone waiting for room."""
        with self.cond:
            for _ in range(min(count, len(self._events))):
                self._events.popleft()
            if not self._events:
                self.flush_requested = False
            self.cond.notify_all()

    def snapshot(self) -> list[AuditEventIn]:
        """Every event still held (not yet delivered)."""
        with self.cond:
            return list(self._events)


class Flusher:
    """The background thread that delivers the buffer in batches, retrying with backoff."""

    def __init__(
        self,
        buffer: EventBuffer,
        backend: Backend,
        *,
        batch_size: int,
        flush_interval: float,
        retry_base: float,
        retry_max: float,
        sleep_rng: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.buffer = buffer
        self.backend = backend
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._rng = sleep_rng
        self._stopping = False
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="audit-trail-flusher", daemon=True)
        # daemon: a non-daemon thread would be joined before atexit hooks run, so the exit-time
        # flush (close() from atexit) could never happen; close() joins it explicitly instead.

    @property
    def stats(self) -> BufferStats:
        """The buffer's counters."""
        return self.buffer.stats

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything buffered now; True when the buffer emptied within `timeout`."""
        cond = self.buffer.cond
        with cond:
            self.buffer.flush_requested = True
            cond.notify_all()
            return cond.wait_for(lambda: len(self.buffer._events) == 0, timeout)

    def close(self, timeout: float) -> int:
        """Stop accepting, deliver what is left for up to `timeout` seconds; return how many remain."""
        cond = self.buffer.cond
        with cond:
            self.buffer.closed = True
            self._stopping = True
            self._deadline = time.monotonic() + timeout
            cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout + 60)  # a request in flight ends within its own timeout
        remaining = len(self.buffer)
        self.stats.undelivered = remaining
        if remaining:
            why = (
                f"the API refused our credentials: {self.buffer.refused}"
                if self.buffer.refused is not None
                else f"destination unreachable for {timeout:.0f} s"
            )
            log.error(
                "audit logger closed with %d undelivered event(s) (%s): they are in logger.pending_events()",
                remaining,
                why,
            )
        return remaining

    def _wait_for_work(self) -> bool | None:
        """Wait until a batch is due: True when there are events to send, False when there are none
        yet, None when the thread should end (closing, and nothing left or out of time)."""
        buffer = self.buffer
        with buffer.cond:
            buffer.cond.wait_for(
                lambda: len(buffer._events) >= self.batch_size or buffer.flush_requested or self._stopping,
                self.flush_interval,
            )
            if self._stopping and (not buffer._events or time.monotonic() >= self._deadline):
                return None
            return bool(buffer._events)

    def _sleep(self, seconds: float) -> None:
        """Back off, waking early when close() is waiting and its deadline comes first."""
        end = min(time.monotonic() + seconds, self._deadline)
        with self.buffer.cond:
            while (remaining := end - time.monotonic()) > 0:
                self.buffer.cond.wait(remaining)
                end = min(end, self._deadline)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:
            log.exception("audit flusher stopped unexpectedly; %d event(s) wait in the buffer", len(self.buffer))
            raise

    def _loop(self) -> None:
        attempt = 0
        while True:
            try:
                work = self._wait_for_work()
                if work is None:
                    return
                if not work:
                    continue
                batch = self.buffer.peek(self.batch_size)
                self._deliver(batch)
            except AuthenticationError as exc:
                attempt += 1
                self.stats.retries += 1
                self.stats.last_error = str(exc)
                cap = max(self.retry_max, AUTH_RETRY_MAX_SECONDS)
                delay = backoff_delay(attempt, self.retry_base, cap, self._rng)
                self._credentials_refused(exc, cap)
                if self._stopping and time.monotonic() >= self._deadline:
                    return
                self._sleep(delay)
                continue
            except DeliveryError as exc:
                attempt += 1
                self.stats.retries += 1
                self.stats.last_error = str(exc)
                delay = exc.retry_after or backoff_delay(attempt, self.retry_base, self.retry_max, self._rng)
                level = logging.WARNING if attempt == 1 or attempt % 10 == 0 else logging.DEBUG
                log.log(level, "audit delivery failed (attempt %d, retrying in %.2f s): %s", attempt, delay, exc)
                if self._stopping and time.monotonic() >= self._deadline:
                    return
                self._sleep(delay)
                continue
            except Exception:  # a bug must not kill the thread and strand every later event
                log.exception("audit flusher: unexpected error; retrying")
                attempt += 1
                self._sleep(backoff_delay(attempt, self.retry_base, self.retry_max, self._rng))
                continue
            if attempt:
                log.info("audit delivery recovered after %d retries", attempt)
            attempt = 0
            self._credentials_accepted()
            self.buffer.remove(len(batch))

    def _credentials_refused(self, exc: AuthenticationError, cap: float) -> None:
        """One ERROR per burst of refusals (not one per retry), and fail-fast for a full `block` buffer."""
        with self.buffer.cond:
            first = self.buffer.refused is None
            self.buffer.refused = exc
            self.stats.credentials_refused = str(exc)
            held = len(self.buffer._events)
            self.buffer.cond.notify_all()  # `block` waiters give up now rather than at their timeout
        if first:
            log.error(
                "audit API refused our credentials: %s. %d event(s) are kept in the buffer and retried "
                "(at most every %.0f s) until it accepts them; while it refuses, a full buffer raises "
                "BufferFullError instead of blocking",
                exc,
                held,
                cap,
            )
        else:
            log.debug("audit API still refuses our credentials: %s", exc)

    def _credentials_accepted(self) -> None:
        if self.buffer.refused is None:
            return
        with self.buffer.cond:
            self.buffer.refused = None
            self.stats.credentials_refused = None
        log.warning("audit API accepts our credentials again; delivery resumed")

    def _deliver(self, events: Sequence[AuditEventIn]) -> None:
        """Store `events`; split on refusals to find the refused ones. Retryable failures propagate."""
        try:
            results = self.backend.send(events)
        except DeliveryError as exc:
            if exc.retryable:
                raise
            if exc.rejected and not exc.too_large:
                refused = set(exc.rejected)
                for index in sorted(refused):
                    if 0 <= index < len(events):
                        self._reject(events[index], str(exc))
                rest = [event for index, event in enumerate(events) if index not in refused]
                if rest:
                    self._deliver(rest)
                return
            if len(events) > 1:
                middle = len(events) // 2
                self._deliver(events[:middle])
                self._deliver(events[middle:])
                return
            self._reject(events[0], str(exc))
            return
        self.stats.batches += 1
        for result in results:
            if result.status == "created":
                self.stats.delivered += 1
            else:
                self.stats.duplicates += 1
                if not result.content_matches:
                    self.stats.conflicts += 1
                    log.error(
                        "event_id %s was already stored with different content: the new event was not stored",
                        result.event_id,
                    )

    def _reject(self, event: AuditEventIn, reason: str) -> None:
        self.stats.rejected += 1
        log.error("audit event %s refused by the destination, not retried: %s", event.event_id, reason)
        kept = self.stats.rejected_events
        kept.append((event, reason))
        del kept[:-MAX_REJECTED_KEPT]
