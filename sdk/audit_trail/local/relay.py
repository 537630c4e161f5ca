"""Relay the database webhook's pg_notify fallback to the detect route, as pg_net would POST it.

Without Supabase's pg_net, `audit.configure_detection_webhook` makes every insert announce itself on
the `audit_detection` channel. The relay LISTENs there and POSTs each payload with the shared secret
header to `/webhooks/supabase`. A lost connection is reopened with backoff; notifications sent while
it was down are gone (as a dropped pg_net call would be), so the relay then runs the detection sweep,
which is exactly what the sweep exists for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

import httpx
import psycopg

CHANNEL: Final = "audit_detection"
APPLICATION_NAME: Final = "audit-trail-local-relay"
SECRET_HEADER: Final = "X-Audit-Webhook-Secret"  # noqa: S105 - a header name
Log = Callable[[str], None]


class WebhookRelay:
    """A background thread: LISTEN, POST each notification, reconnect when the database goes away."""

    def __init__(
        self,
        database_url: str,
        webhook_url: str,
        secret: str,
        log: Log,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self._database_url = database_url
        self._webhook_url = webhook_url
        self._secret = secret
        self._log = log
        self._on_reconnect = on_reconnect
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-relay", daemon=True)
        self.relayed = 0
        self.failed = 0

    def start(self, timeout: float = 10.0) -> None:
        """Start relaying; return once the first LISTEN is in place (nothing inserted after is missed)."""
        self._thread.start()
        if not self._listening.wait(timeout):
            raise RuntimeError(f"the webhook relay could not LISTEN on {CHANNEL} within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop after the notification in flight."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff = 0.5
        first = True
        with httpx.Client(timeout=60.0) as http:
            while not self._stop.is_set():
                try:
                    with psycopg.connect(
                        self._database_url, autocommit=True, application_name=APPLICATION_NAME
                    ) as conn:
                        conn.execute(f"listen {CHANNEL}")
                        self._listening.set()
                        if not first:
                            self._log("webhook relay: reconnected to the database")
                            if self._on_reconnect is not None:
                                self._on_reconnect()
                        first, backoff = False, 0.5
                        while not self._stop.is_set():
                            for notice in conn.notifies(timeout=0.5):
                                self._post(http, notice.payload)
                except psycopg.OperationalError as exc:
                    if self._stop.is_set():
                        break
                    self._log(f"webhook relay: database unavailable ({exc.__class__.__name__}); retrying")
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)

    def _post(self, http: httpx.Client, payload: str) -> None:
        # pg_net sends once and never retries; the relay tries a little harder, then leaves it to the sweep.
        for attempt in (1, 2, 3):
            try:
                response = http.post(
                    self._webhook_url,
                    content=payload,
                    headers={"Content-Type": "application/json", SECRET_HEADER: self._secret},
                )
            except httpx.HTTPError as exc:
                if attempt == 3 or self._stop.is_set():
                    self.failed += 1
                    self._log(f"webhook relay: POST failed ({exc}); the sweep will analyse it")
                    return
                time.sleep(0.2 * attempt)
                continue
            if response.status_code < 500 or attempt == 3:
                break
            time.sleep(0.2 * attempt)
        if response.status_code >= 300:
            self.failed += 1
            self._log(f"webhook relay: detect answered {response.status_code}: {response.text[:200]}")
        else:
            self.relayed += 1
