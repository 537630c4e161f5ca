"""Streaming callbacks: every event the logger accepts, and alerts when subscribed.

Callbacks run on one background thread that owns its own asyncio event loop, in the order the
notifications arrived: sync callbacks are called, async ones are run to completion on that loop.
They never run on the application's thread or loop, so a slow or failing callback cannot slow or
break logging (errors are logged), and a logger created under `asyncio.run(...)` keeps working after
that loop is gone. Notifications wait in a bounded queue; if callbacks fall that far behind, further
notifications are skipped with a warning (the events themselves are still delivered: the buffer,
not this queue, holds the audit trail).

A callback with one parameter receives each event (`callback(event)`); one that takes two receives
alerts (`callback(event, analysis)`: the triggering stored event and the alert as a dict with
`risk_score`, `severity`, `rule`, `summary`...), found by polling the alerts API in the background.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from audit_common.api import AlertOut
from audit_trail.backend import Backend
from audit_trail.errors import APIError, AuthenticationError

log = logging.getLogger("audit_trail")

StreamingCallback = Callable[..., Any]
_STOP = object()
_SEEN_ALERTS_KEPT = 10_000


def takes_two_arguments(callback: StreamingCallback) -> bool:
    """True when the callback accepts (event, analysis): it is an alert handler."""
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 2 or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()
    )


class CallbackDispatcher:
    """Runs callbacks on a dedicated thread with its own event loop."""

    def __init__(self, queue_limit: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_limit)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._skipping = False
        self.skipped = 0
        self.failures = 0

    def submit(self, callbacks: list[StreamingCallback], *args: Any) -> None:
        """Queue one notification for these callbacks (never blocks the caller)."""
        if not callbacks:
            return
        self._ensure_started()
        try:
            self._queue.put_nowait((callbacks, args))
            self._skipping = False
        except queue.Full:
            self.skipped += 1
            if not self._skipping:
                self._skipping = True
                log.warning("streaming callbacks are too slow: skipping notifications (events are still delivered)")

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-trail-callbacks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        loop: asyncio.AbstractEventLoop | None = None  # made on the first async callback
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                callbacks, args = item
                for callback in callbacks:
                    try:
                        result = callback(*args)
                        if inspect.isawaitable(result):
                            loop = loop or asyncio.new_event_loop()
                            loop.run_until_complete(result)
                    except Exception:
                        self.failures += 1
                        log.exception("streaming callback %r failed", getattr(callback, "__name__", callback))
        finally:
            if loop is not None:
                loop.close()

    def close(self, timeout: float) -> None:
        """Run what is queued (up to `timeout`), then stop the thread."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(_STOP, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    log.warning(
                        "streaming callbacks still busy at close; %d notification(s) not run", self._queue.qsize()
                    )
                    return
        thread.join(max(0.0, deadline - time.monotonic()))


class AlertPoller:
    """Polls the newest alerts and hands each new one, with its triggering event, to alert callbacks."""

    def __init__(
        self, backend: Backend, dispatcher: CallbackDispatcher, callbacks: list[StreamingCallback], interval: float
    ) -> None:
        self._backend = backend
        self._dispatcher = dispatcher
        self._callbacks = callbacks
        self._interval = interval
        # Alerts raised before the subscription are history, not news: start() marks the ones that
        # exist as seen; if it cannot read them, creation time (by this machine's clock) decides.
        self._since: str | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-trail-alerts", daemon=True)

    def start(self) -> None:
        """Note the alerts that already exist, then begin polling."""
        try:
            for alert in self._backend.list_alerts(limit=1000):
                self._seen[alert.alert_id] = None
        except Exception as exc:
            log.warning("could not read existing alerts (%s); alerts created from now on will be reported", exc)
            self._since = datetime.now(UTC).isoformat()
        self._thread.start()

    def poll_once(self) -> int:
        """Fetch the newest alerts and dispatch the new ones (oldest first); returns how many."""
        alerts = self._backend.list_alerts(limit=100)
        fresh = [
            alert
            for alert in reversed(alerts)
            if alert.alert_id not in self._seen and (self._since is None or _created_at(alert) >= self._since)
        ]
        for alert in fresh:
            event = self._backend.get_event(alert.event_ids[-1]) if alert.event_ids else None
            self._seen[alert.alert_id] = None
            while len(self._seen) > _SEEN_ALERTS_KEPT:
                self._seen.popitem(last=False)
            self._dispatcher.submit(list(self._callbacks), event, alert.model_dump(mode="json"))
        return len(fresh)

    def _run(self) -> None:
        refused = False
        while not self._stop.wait(self._interval):
            try:
                self.poll_once()
            except AuthenticationError as exc:
                # A configuration error: one ERROR, not one warning per poll, until the token works again.
                log.log(logging.DEBUG if refused else logging.ERROR, "polling alerts refused (will retry): %s", exc)
                refused = True
                continue
            except APIError as exc:
                log.warning("polling alerts failed (will retry): %s", exc)
            except Exception:
                log.exception("polling alerts failed (will retry)")
            else:
                if refused:
                    log.warning("polling alerts: the API accepts our read token again")
                refused = False

    def close(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


def _created_at(alert: AlertOut) -> str:
    # Normalised so string comparison orders instants: both sides are UTC ISO 8601.
    try:
        return datetime.fromisoformat(alert.created_at.replace("Z", "+00:00")).astimezone(UTC).isoformat()
    except ValueError:
        return alert.created_at
