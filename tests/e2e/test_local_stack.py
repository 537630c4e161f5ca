"""`audit-trail local` end to end: over HTTP and the CLI only, as a user drives it."""

from __future__ import annotations

import hashlib
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import psycopg
import pytest

from audit_trail.local.relay import APPLICATION_NAME
from audit_trail.local.scenario import SPRAY_IP, Chapter, working_day
from tests.e2e._stack import (
    RunningStack,
    alive,
    caller_event_count,
    chain_length,
    descendants,
    run_cli,
    start_stack,
)

ATTACK_RULES = {"brute_force", "multiple_failed_logins", "data_exfiltration", "privilege_escalation"}


def post_chapters(api: httpx.Client, chapters: list[Chapter]) -> int:
    """POST every chapter in batches; the number of events created."""
    created = 0
    for chapter in chapters:
        for offset in range(0, len(chapter.events), 500):
            answer = api.post("/events", json={"events": chapter.events[offset : offset + 500]})
            assert answer.status_code == 201, answer.text
            created += answer.json()["created"]
    return created


def wait_for_alerts(api: httpx.Client, rules: set[str], timeout: float = 60) -> list[dict[str, Any]]:
    """Poll GET /alerts until every rule in `rules` raised an alert (the relay works asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        alerts: list[dict[str, Any]] = api.get("/alerts", params={"limit": 100}).json()["alerts"]
        if rules <= {alert["rule"] for alert in alerts} or time.monotonic() > deadline:
            return alerts
        time.sleep(0.3)


def test_events_are_stored_detected_and_verified_then_a_tamper_is_caught(
    stack: RunningStack, api: httpx.Client
) -> None:
    """Given a running stack, When a day with three attacks is posted, Then the relayed webhook raises
    each attack's alert, verify passes, and after a superuser edits one row verify names that row."""
    chapters = working_day(day_events=300, users=20, seed=7)
    total = sum(len(chapter.events) for chapter in chapters)

    assert post_chapters(api, chapters) == total
    alerts = wait_for_alerts(api, ATTACK_RULES)

    by_rule = {alert["rule"]: alert for alert in alerts}
    assert set(by_rule) == ATTACK_RULES
    assert by_rule["brute_force"]["alert_key"] == SPRAY_IP
    assert by_rule["brute_force"]["severity"] in ("high", "critical")
    assert by_rule["brute_force"]["risk_score"] >= 7
    assert by_rule["brute_force"]["event_count"] >= 20
    assert by_rule["data_exfiltration"]["alert_key"] == "user-007"
    assert by_rule["privilege_escalation"]["alert_key"] == "user-033"
    assert by_rule["multiple_failed_logins"]["alert_key"] == "user-005"

    sample = chapters[0].events[42]
    stored = api.get(f"/events/{sample['event_id']}").json()
    assert (stored["event_id"], stored["user_id"], stored["resource_path"]) == (
        sample["event_id"],
        sample["user_id"],
        sample["resource_path"],
    )
    replay = api.post("/events", json=sample)
    assert (replay.status_code, replay.json()["duplicates"]) == (200, 1)

    # The chain also holds the API's records of the reads above (audit of the audit): count what it holds.
    assert caller_event_count(stack.database_url) == total
    in_chain = chain_length(stack.database_url)
    intact = run_cli("verify", "--database-url", stack.database_url, "--no-progress", env=stack.aws_env)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"{in_chain:,}/{in_chain:,} events valid" in intact.stdout

    victim = stored["seq"]
    with psycopg.connect(stack.database_url, autocommit=True) as db:
        db.execute("set session_replication_role = replica")
        db.execute("update audit.audit_events set resource_path = '/nothing/to/see' where seq = %s", (victim,))
    tampered = run_cli("verify", "--database-url", stack.database_url, "--json", env=stack.aws_env)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    result = orjson.loads(tampered.stdout)
    assert (result["valid"], result["first_invalid_seq"], result["reason"]) == (False, victim, "modified")


def test_the_relay_reconnects_and_the_sweep_covers_what_it_missed(stack: RunningStack, api: httpx.Client) -> None:
    """Given the relay's database connection is killed, When attacks are posted, Then they are still detected."""
    with psycopg.connect(stack.database_url, autocommit=True) as db:
        killed = db.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where application_name = %s and datname = current_database()",
            (APPLICATION_NAME,),
        ).fetchone()
    assert killed is not None
    assert killed[0] == 1

    spray = working_day(day_events=0, users=30, seed=3)[1]
    post_chapters(api, [spray])

    alerts = wait_for_alerts(api, {"brute_force"})
    assert "brute_force" in {alert["rule"] for alert in alerts}
    assert "webhook relay: reconnected" in stack.log()


def test_invoke_runs_a_schedule_with_its_template_input(stack: RunningStack) -> None:
    """Given a running stack, When `audit-trail invoke sweep` runs, Then the sweep function ran with its input."""
    done = run_cli("invoke", "sweep", "--data-dir", str(stack.data_dir))

    assert done.returncode == 0, done.stdout + done.stderr
    answer = orjson.loads(done.stdout)
    assert (answer["function"], answer["input"]) == ("DetectSweepFunction", {"action": "sweep"})
    assert answer["result"]["complete"] is True


def test_invoke_reports_runs_the_first_report_schedule(stack: RunningStack, api: httpx.Client) -> None:
    """Given the reports function's schedules, When `audit-trail invoke reports` runs, Then the first one
    (in template order) ran with its input and its report is listed by GET /reports."""
    report_schedules = [s for s in stack.state["schedules"] if s["function"] == "ReportsFunction"]
    if not report_schedules:
        pytest.skip("this build has no report schedules")

    done = run_cli("invoke", "reports", "--data-dir", str(stack.data_dir))

    assert done.returncode == 0, done.stdout + done.stderr
    answer = orjson.loads(done.stdout)
    assert (answer["function"], answer["input"]) == ("ReportsFunction", report_schedules[0]["input"])
    listed = api.get("/reports").json()["reports"]
    assert [report["standard"] for report in listed] == [report_schedules[0]["input"]["standard"]]


def test_every_schedule_of_the_template_runs_in_the_stack(stack: RunningStack, api: httpx.Client) -> None:
    """Given the template's schedules, When each is invoked once on a day of events, Then every one succeeds:
    each function finds the resources and settings its template environment names."""
    post_chapters(api, working_day(day_events=50, users=5, seed=13)[:1])
    failures = {}
    for schedule in stack.state["schedules"]:
        answer = api.post(f"/_local/invoke/{schedule['name']}", timeout=300)
        if answer.status_code != 200:
            failures[schedule["name"]] = answer.text[:300]
        else:
            assert answer.json()["input"] == schedule["input"]
    assert failures == {}


def test_invoke_refuses_unknown_names_and_reports_function_errors(stack: RunningStack) -> None:
    """Given a running stack, When an unknown schedule or a wrong input is invoked, Then the CLI says so."""
    unknown = run_cli("invoke", "coffee", "--api-url", stack.api_url)
    assert unknown.returncode == 2
    assert "known: " in orjson.loads(unknown.stdout)["error"]["message"]

    wrong = run_cli("invoke", "sweep", "--api-url", stack.api_url, "--input", '{"action": "retention"}')
    assert wrong.returncode == 1
    assert orjson.loads(wrong.stdout)["error"]["message"].startswith("action: expected 'sweep'")


def test_a_taken_port_is_refused_before_the_database_is_touched(e2e_database: str, tmp_path: Path) -> None:
    """Given the API port in use, When `audit-trail local` starts, Then exit 2 naming the port, nothing migrated."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("local", "--port", str(port), "--database-url", e2e_database, "--data-dir", str(tmp_path))

    assert done.returncode == 2
    assert f"127.0.0.1:{port} is already in use" in done.stderr
    with psycopg.connect(e2e_database) as db:
        assert db.execute("select to_regnamespace('audit')").fetchone() == (None,)


def test_invoke_without_a_running_stack_is_a_usage_error(tmp_path: Path) -> None:
    """Given no stack in the data directory, When invoking, Then exit 2 with a hint."""
    done = run_cli("invoke", "sweep", "--data-dir", str(tmp_path))

    assert done.returncode == 2
    assert "audit-trail local" in done.stderr


def test_routes_come_from_the_template_and_unknown_ones_answer_like_a_gateway(api: httpx.Client) -> None:
    """Given the template's routes, When paths, methods and bodies are wrong, Then 404, 405 and 422 come back."""
    assert api.get("/nowhere").status_code == 404
    assert api.get("/nowhere").json()["error"]["code"] == "NOT_FOUND"
    wrong_method = api.delete("/events")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "GET, POST")
    unknown_event = api.get("/events/no-such-event")
    assert unknown_event.status_code == 404
    assert "no-such-event" in unknown_event.json()["error"]["message"]
    refused = api.post("/events", json={"event_type": "file_teleport", "user_id": "u1", "action": "x"})
    assert refused.status_code == 422
    assert any(error["field"].endswith("event_type") for error in refused.json()["errors"])
    assert api.get("/integrity/verify").json()["valid"] is True


def test_reports_download_through_their_presigned_link(stack: RunningStack, api: httpx.Client) -> None:
    """Given events, When a report is generated, Then its presigned link downloads it from the local S3,
    byte for byte what the report recorded."""
    if not any(route["path"] == "/reports" for route in stack.state["routes"]):
        pytest.skip("this build has no reports function")
    posted = post_chapters(api, working_day(day_events=100, users=10, seed=5)[:1])
    now = datetime.now(UTC)
    period = {"start": (now - timedelta(days=1)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat()}

    created = api.post("/reports", json={"standard": "gdpr", **period})

    assert created.status_code == 201, created.text
    report = created.json()
    assert (report["standard"], report["status"]) == ("gdpr", "ready")
    # Every posted event is in scope; the API's own record of this request may be too.
    assert posted <= report["total_events"] <= chain_length(stack.database_url)
    link = report["download_url"]
    assert link.startswith(stack.state["moto_endpoint"])
    downloaded = httpx.get(link)
    assert downloaded.status_code == 200
    recorded = report["formats"][report["download_format"]]
    assert hashlib.sha256(downloaded.content).hexdigest() == recorded["sha256"]
    assert len(downloaded.content) == recorded["size_bytes"]
    fetched = api.get(f"/reports/{report['report_id']}").json()
    assert httpx.get(fetched["download_url"]).content == downloaded.content


def test_the_anchor_signs_a_digest_that_proofs_and_verify_use(stack: RunningStack, api: httpx.Client) -> None:
    """Given events, When `audit-trail invoke anchor` runs, Then an Object-Locked signed digest covers them,
    an event's inclusion proof leads to its root, and verify checks the digest from the bucket."""
    if not any(schedule["name"] == "anchor" for schedule in stack.state["schedules"]):
        pytest.skip("this build has no anchor function")
    events = working_day(day_events=40, users=8, seed=11)[0].events
    posted = post_chapters(api, [Chapter("a few", events)])
    in_chain = chain_length(stack.database_url)

    anchored = run_cli("invoke", "anchor", "--data-dir", str(stack.data_dir))

    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    result = orjson.loads(anchored.stdout)["result"]
    assert in_chain >= posted == len(events)
    assert (result["status"], result["digest_seq"], result["tree_size"]) == ("written", 1, in_chain)
    bucket = next(name for logical, name in stack.state["buckets"].items() if "Digest" in logical)
    s3 = boto3.client("s3", endpoint_url=stack.aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    stored = s3.head_object(Bucket=bucket, Key=result["s3_key"])
    assert stored["ObjectLockMode"] == "COMPLIANCE"
    assert stored["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=365)

    proof = api.get(f"/events/{events[7]['event_id']}/proof")
    assert proof.status_code == 200, proof.text
    body = proof.json()
    assert (body["leaf_index"], body["tree_size"], body["root_hash"]) == (
        body["seq"] - 1,
        in_chain,
        result["root_hash"],
    )
    assert root_from_inclusion(body) == body["root_hash"]

    checked = run_cli(
        "verify", "--database-url", stack.database_url, "--no-progress",
        "--digest-bucket", bucket, "--endpoint-url", stack.aws_env["AWS_ENDPOINT_URL"], env=stack.aws_env,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1/1 digests valid" in checked.stdout

    # The digest names the full key ARN, and the fingerprint the stack publishes (and verify pinned) is the one
    # `audit-trail keys fingerprint` prints for it, as an operator would publish it.
    body = s3.get_object(Bucket=bucket, Key=result["s3_key"])["Body"].read()
    key_arn = orjson.loads(body)["signing_key_id"]
    assert key_arn.startswith("arn:aws:kms:") and ":key/" in key_arn
    printed = run_cli(
        "keys", "fingerprint", "--key-id", key_arn, "--endpoint-url", stack.aws_env["AWS_ENDPOINT_URL"],
        env=stack.aws_env,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    assert [printed.stdout.strip()] == list(stack.state["signing_key_fingerprints"].values())
    assert stack.aws_env["AUDIT_SIGNING_KEY_FINGERPRINTS"] == printed.stdout.strip()


def root_from_inclusion(proof: dict[str, Any]) -> str:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to (hex)."""
    index, last = proof["leaf_index"], proof["tree_size"] - 1
    node = hashlib.sha256(b"\x00" + bytes.fromhex(proof["checksum"])).digest()
    for sibling_hex in proof["inclusion_proof"]:
        sibling = bytes.fromhex(sibling_hex)
        if index % 2 == 1 or index == last:
            node = hashlib.sha256(b"\x01" + sibling + node).digest()
            while index % 2 == 0 and index != 0:
                index, last = index >> 1, last >> 1
        else:
            node = hashlib.sha256(b"\x01" + node + sibling).digest()
        index, last = index >> 1, last >> 1
    return node.hex()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_everything_cleanly(e2e_database: str, tmp_path: Path, signum: int) -> None:
    """Given a running stack, When it gets Ctrl-C or SIGTERM, Then it exits 0, leaves no process and no state."""
    running = start_stack(e2e_database, tmp_path / "stack")
    children = descendants(running.process.pid)

    assert running.stop(signum, timeout=15) == 0

    assert not [pid for pid in children if alive(pid)]
    assert not (tmp_path / "stack" / "local-stack.json").exists()
    assert "stopping" in running.log()


@pytest.fixture
def outside_pytest_tmp() -> Iterator[Path]:
    """A directory outside pytest's 0700 temp root: pgserver opens the path up for its own system user when
    run as root, and a concurrently starting pytest would close it again under initdb's feet."""
    directory = Path(tempfile.mkdtemp(prefix="audit-e2e-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_the_embedded_database_stops_with_the_stack(outside_pytest_tmp: Path) -> None:
    """Given no database URL, When the stack starts and is stopped, Then its embedded PostgreSQL stops too."""
    running = start_stack(None, outside_pytest_tmp / "stack")
    try:
        assert running.state["embedded_database"] is True
        postmaster = int((outside_pytest_tmp / "stack" / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert alive(postmaster)
        with running.client() as api:
            verified = api.get("/integrity/verify").json()
        assert verified["valid"] is True
        assert caller_event_count(running.database_url or str(running.state["database_url"])) == 0
    finally:
        code = running.stop(signal.SIGTERM, timeout=30)

    assert code == 0
    deadline = time.monotonic() + 10
    while alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(postmaster)


def test_cli_tokens_open_the_routes_of_their_role(stack: RunningStack) -> None:
    """Given `audit-trail token` for a writer and an auditor, Then the writer's token stores events and, once the
    template has the JWT authorizer, the auditor's token reads them while each is refused the other's route,
    an absent token gets 401 and the banner says how to get a token."""
    written = run_cli("token", "--role", "writer", "--sub", "e2e-app", "--data-dir", str(stack.data_dir))
    assert written.returncode == 0, written.stderr
    writer = written.stdout.strip()
    assert written.stdout == writer + "\n"
    event = working_day(day_events=1, users=1, seed=2)[0].events[0]
    with httpx.Client(base_url=stack.api_url, timeout=60) as api:
        stored = api.post("/events", json=event, headers={"Authorization": f"Bearer {writer}"})
        assert stored.status_code == 201, stored.text

        read = run_cli("token", "--role", "auditor", "--json", "--data-dir", str(stack.data_dir))
        if not stack.checks_tokens:
            assert read.returncode == 2
            assert "no JWT secret" in read.stderr
            assert "checks no access tokens yet" in stack.log_when("local_stack_ready")
            return
        assert read.returncode == 0, read.stderr
        auditor = orjson.loads(read.stdout)["token"]
        assert f"audit-trail token --role auditor --data-dir {stack.data_dir}" in stack.log_when("local_stack_ready")

        found = api.get(f"/events/{event['event_id']}", headers={"Authorization": f"Bearer {auditor}"})
        assert (found.status_code, found.json()["event_id"]) == (200, event["event_id"])
        assert api.get("/alerts").status_code == 401
        assert api.get("/alerts", headers={"Authorization": f"Bearer {writer}"}).status_code == 403
        as_auditor = api.post("/events", json=event, headers={"Authorization": f"Bearer {auditor}"})
        assert as_auditor.status_code == 403
        forged = writer[:-4] + ("AAAA" if not writer.endswith("AAAA") else "BBBB")
        assert api.post("/events", json=event, headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_a_made_up_token_with_a_nul_in_the_query_is_refused_not_a_500(stack: RunningStack) -> None:
    """Given a token that does not verify and a query holding a NUL (the fuzz found it), Then 401, as for any
    made-up token: recording the refused attempt must not turn the refusal into a gateway error."""
    if not stack.checks_tokens:
        pytest.skip("this template has no authorizer")
    refused = httpx.get(f"{stack.api_url}/alerts?cursor=%00", headers={"Authorization": "Bearer x"}, timeout=30)

    assert refused.status_code == 401, refused.text


@pytest.mark.parametrize("path", ["/alerts", "/events", "/integrity/verify", "/analytics", "/reports"])
def test_a_nul_in_an_unknown_query_parameter_is_not_a_server_error(api: httpx.Client, path: str) -> None:
    """Given an auditor's read with a NUL in a query parameter the route does not even take, Then the API answers
    it (or refuses it with 4xx); recording the read must not make the function fail (502)."""
    answer = api.get(f"{path}?x=%00")

    assert answer.status_code < 500, answer.text
