"""The dashboard in a real browser: Debian's chromium, headless, against the local stack.

One local stack for the module, on its own fresh database, seeded through the ingest API with the
demo's working day and its attacks (a password-spraying burst from one address over 25 accounts, then
one account six times, an insider's bulk download, a self-granted admin role). Detection runs from the
stack's relayed database webhook; the fixture waits until `GET /alerts` lists the spraying alerts.

Each test opens `<api_url>/dashboard` on a laptop (1280x900) or a phone (390x844), signs in with an
auditor's access token signed with the stack's JWT secret (what `audit-trail token --role auditor`
prints; the events are sent with a registered writer token), and must see no console error or
warning, no page error, no failed request and no request outside the stack's origin. Full-page
screenshots go to `test-artifacts/dashboard/` (gitignored); `pytest -s` prints their paths.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from audit_trail.local.scenario import SPRAY_IP, batches, working_day
from audit_trail.local.stack import LocalStack
from audit_trail.local.tokens import bearer
from audit_trail.postgres import create_database, drop_database
from tests.integration.test_sdk_local_api import wait_until
from tests.support.browser import PageLog, headless_chromium, new_logged_page

ROOT: Final = Path(__file__).resolve().parents[2]
ARTIFACTS: Final = ROOT / "test-artifacts" / "dashboard"
DAY_EVENTS: Final = 300
# The two people who mistype their password once, 25 sprayed accounts, then one account 6 times.
FAILED_LOGINS: Final = 2 + 25 + 6
SPRAY_RULES: Final = ("brute_force", "multiple_failed_logins")
VIEWPORTS: Final = {"desktop": (1280, 900, 1.0), "phone": (390, 844, 2.0)}

# Chromium runs in a separate process and the stack is shared: one xdist worker owns this module. The
# mark exists only where xdist runs the tests (`--strict-markers` refuses it under `-p no:xdist`).
pytestmark = [pytest.mark.xdist_group("dashboard-browser")] if os.environ.get("PYTEST_XDIST_WORKER") else []


@dataclass(frozen=True)
class Seeded:
    """The running stack and what was sent to it."""

    stack: LocalStack
    stored: int
    alerts: list[dict[str, Any]]

    def auditor_token(self, *, now: datetime | None = None) -> str:
        """An auditor's access token for the stack, minted at `now` with a one-hour lifetime."""
        return _auditor_token(self.stack, now=now)

    @property
    def origin(self) -> str:
        """scheme://host:port of the API: the only place the page may talk to."""
        parts = urlsplit(self.stack.api_url)
        return f"{parts.scheme}://{parts.netloc}"

    def alert(self, rule: str) -> dict[str, Any]:
        """The first alert of `rule` (newest first, as GET /alerts lists them)."""
        return next(a for a in self.alerts if a["rule"] == rule)


def _auditor_token(stack: LocalStack, *, now: datetime | None = None) -> str:
    return stack.token("auditor", email="auditor@files.example", now=now)


def _alerts(stack: LocalStack) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{stack.api_url}/alerts", params={"limit": 100}, headers=bearer(_auditor_token(stack)), timeout=30
    )
    answer.raise_for_status()
    alerts: list[dict[str, Any]] = answer.json()["alerts"]
    return alerts


def _story_end() -> datetime:
    """The `now` of the demo's story. Detection names alerts by tumbling windows aligned to the epoch
    (15 minutes, 1 hour); the story's attacks fill 36 minutes from 50 minutes before its end. Starting
    them a minute past an hour puts each attack in one window, so it raises one alert whatever the clock
    says, and every event is at least 14 minutes old."""
    attacks = (datetime.now(UTC) - timedelta(minutes=50)).replace(minute=1, second=0, microsecond=0)
    return attacks + timedelta(minutes=50)


@pytest.fixture(scope="module")
def seeded(pg_server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The local stack on a fresh database, with the demo's day and attacks stored and analysed."""
    name = f"audit_dash_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_server_url, name, template=template_db)
    try:
        with LocalStack(
            database_url=url, port=0, data_dir=tmp_path_factory.mktemp("dashboard-stack"), write_state=False
        ) as stack:
            events = [e for chapter in working_day(day_events=DAY_EVENTS, now=_story_end()) for e in chapter.events]
            writer = bearer(stack.token("writer", "files-web"))
            stored = 0
            for batch in batches(events):
                answer = httpx.post(f"{stack.api_url}/events", json={"events": batch}, headers=writer, timeout=60)
                assert answer.status_code in (200, 201), answer.text
                stored += answer.json()["created"]
            assert stored == len(events)

            def analysed() -> bool:
                relay = httpx.get(f"{stack.api_url}/_local/status", timeout=30).json()["relay"]
                return bool(relay["relayed"] + relay["failed"] >= stored)

            assert wait_until(analysed, timeout=120), "the relay did not deliver every webhook"
            # A webhook the relay could not deliver is what the sweep is for (it is idempotent).
            httpx.post(f"{stack.api_url}/_local/invoke/sweep", timeout=60).raise_for_status()
            raised = [a["rule"] for a in _alerts(stack)]
            assert sorted(r for r in raised if r in SPRAY_RULES) == sorted(SPRAY_RULES), raised
            yield Seeded(stack=stack, stored=stored, alerts=_alerts(stack))
    finally:
        drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium, launched once for the module."""
    with headless_chromium() as instance:
        yield instance


def _open_dashboard(browser: Browser, seeded: Seeded, viewport: str) -> tuple[Page, PageLog]:
    width, height, scale = VIEWPORTS[viewport]
    page, log = new_logged_page(browser, width=width, height=height, scale=scale)
    page.goto(f"{seeded.stack.api_url}/dashboard", wait_until="load")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    return page, log


def _sign_in(page: Page, token: str) -> None:
    """Type the token into the labelled field and press Enter, as a keyboard user would."""
    field = page.get_by_label("Access token")
    field.fill(token)
    field.press("Enter")


def _wait_for_data(page: Page) -> None:
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#updated")).to_contain_text("Updated ")


def _screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"dashboard artefact: {path.relative_to(ROOT)}")
    return path


def _assert_clean(log: PageLog, seeded: Seeded) -> None:
    assert log.console == []
    assert log.errors == []
    assert log.failed == []
    elsewhere = [url for url in log.requests if not url.startswith(seeded.origin + "/")]
    assert elsewhere == [], "the page asked for something outside the stack"


def _kpi(page: Page, key: str) -> int:
    return int(page.locator(f"#k-{key}").inner_text().replace(",", ""))


# --- tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_dashboard_shows_the_seeded_attack(browser: Browser, seeded: Seeded, viewport: str) -> None:
    """Given the seeded day and spraying attack, when an auditor signs in with the keyboard, then the
    figures, charts and open alerts show the attack, and the page loaded nothing from elsewhere."""
    page, log = _open_dashboard(browser, seeded, viewport)
    _screenshot(page, f"signin-{viewport}")
    # The field is labelled and has the focus; text that is not a JWT is refused in words.
    expect(page.get_by_label("Access token")).to_be_focused()
    _sign_in(page, "not a token")
    expect(page.locator("#signin-error")).to_have_text("That is not a JWT (three dot-separated parts).")
    expect(page.locator("#dashboard")).to_be_hidden()

    _sign_in(page, seeded.auditor_token())
    _wait_for_data(page)

    # Every stored event is in the last 24 hours (the default period), and so are the failed logins.
    assert _kpi(page, "events") >= seeded.stored
    assert _kpi(page, "failed-logins") == FAILED_LOGINS
    assert _kpi(page, "failures") >= FAILED_LOGINS
    assert _kpi(page, "open") == len([a for a in seeded.alerts if a["status"] == "open"])
    assert _kpi(page, "alerts") >= len(SPRAY_RULES)
    # The failures chart peaks at the spraying burst: its accessible summary names the total.
    failures = page.locator("#c-logins svg[role=img] > title").text_content() or ""
    summary = re.search(r"total (\d+), highest (\d+) at", failures)
    assert summary is not None, failures
    assert int(summary[1]) == FAILED_LOGINS
    # 31 of the failures come from the spraying address within five minutes: at least half share a bucket.
    assert int(summary[2]) >= (FAILED_LOGINS - 2 + 1) // 2
    assert page.locator("#c-logins svg rect").count() >= 1
    assert page.locator("#c-risk svg[role=img]").count() == 1
    # The spraying alerts are listed, with their keys and buttons named for assistive technology.
    rows = page.locator("#open-alerts tr")
    for rule in SPRAY_RULES:
        alert = seeded.alert(rule)
        button = page.get_by_role("button", name=f"Acknowledge {rule} alert for {alert['alert_key']}")
        row = rows.filter(has=button)
        expect(row).to_be_visible()
        expect(row).to_contain_text(alert["severity"])
        # The buttons are on screen, on a phone too, without scrolling the table sideways.
        box = button.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS[viewport][0]
    expect(rows.filter(has_text=SPRAY_IP).first).to_be_visible()
    # The spraying address leads the riskiest addresses; the chain status is in the header.
    expect(page.locator("#top-ips")).to_contain_text(SPRAY_IP)
    expect(page.locator("#chain-badge .badge")).to_be_visible()

    _screenshot(page, f"dashboard-{viewport}")
    if viewport == "phone":
        # Nothing may be wider than the screen but the tables that scroll inside their box.
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow == 0
    _assert_clean(log, seeded)
    assert any(url.startswith(f"{seeded.origin}/analytics?") for url in log.requests)
    page.close()


def test_signing_out_forgets_the_token(browser: Browser, seeded: Seeded) -> None:
    """Given a signed-in page, when Sign out is pressed, then the token leaves session storage and a
    reload shows the sign-in form again."""
    page, log = _open_dashboard(browser, seeded, "desktop")
    _sign_in(page, seeded.auditor_token())
    _wait_for_data(page)
    assert page.evaluate("sessionStorage.length") == 1

    page.get_by_role("button", name="Sign out").click()

    expect(page.locator("#signin-error")).to_have_text("Signed out.")
    assert page.evaluate("sessionStorage.length") == 0
    page.reload(wait_until="load")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#dashboard")).to_be_hidden()
    _assert_clean(log, seeded)
    page.close()


def test_an_expired_token_is_sent_back_to_sign_in(browser: Browser, seeded: Seeded) -> None:
    """Given an auditor's token, signed with the stack's secret, that expired an hour ago, when it is used to
    sign in, then the API refuses it and the page returns to the sign-in form saying why."""
    page, _ = _open_dashboard(browser, seeded, "desktop")

    _sign_in(page, seeded.auditor_token(now=datetime.now(UTC) - timedelta(hours=2)))

    expect(page.locator("#signin-error")).to_have_text(
        "Your session has expired or the token was refused; sign in again.", timeout=15_000
    )
    expect(page.locator("#dashboard")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    page.close()


def test_acknowledging_an_alert_changes_it_in_the_database(browser: Browser, seeded: Seeded) -> None:
    """Given the open brute_force alert, when its Acknowledge button is pressed, then the database holds
    it as acknowledged, the page says so and it leaves the open list. (Runs last: it changes the data.)"""
    alert = seeded.alert("brute_force")
    name = f"Acknowledge brute_force alert for {alert['alert_key']}"
    page, log = _open_dashboard(browser, seeded, "desktop")
    _sign_in(page, seeded.auditor_token())
    _wait_for_data(page)
    open_before = _kpi(page, "open")

    page.get_by_role("button", name=name).click()

    expect(page.locator("#status")).to_have_text(f"Alert brute_force for {alert['alert_key']} is now acknowledged.")
    with psycopg.connect(seeded.stack.database_url, autocommit=True) as conn:
        row = conn.execute(
            "select status, status_changed_at is not null from audit.security_alerts where alert_id = %s",
            (alert["alert_id"],),
        ).fetchone()
    assert row == ("acknowledged", True)
    expect(page.get_by_role("button", name=name)).to_have_count(0)
    assert _kpi(page, "open") == open_before - 1
    _screenshot(page, "acknowledged-desktop")
    _assert_clean(log, seeded)
    # The API agrees with the database.
    listed = {a["alert_id"]: a["status"] for a in _alerts(seeded.stack)}
    assert listed[alert["alert_id"]] == "acknowledged"
    page.close()
