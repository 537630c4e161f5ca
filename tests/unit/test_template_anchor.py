"""template.yaml's anchor resources agree with the anchor code: bucket, key, function, schedule and permissions.

Read from the template itself (cfn-lint's decoder, and the SAM translator where generated roles matter), as
tests/unit/test_template.py does, so the moto setup of the integration tests cannot drift from the stack.
"""

from __future__ import annotations

import fnmatch
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from cfnlint.decode import decode  # type: ignore[import-untyped]
from samtranslator.translator.transform import transform  # type: ignore[import-untyped]

from anchor.digest_store import DigestStore
from audit_common.integrity.digest import SIGNATURE_METADATA_KEY
from audit_common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DIGEST_ACTIONS = {"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:ListBucket"}


def _template() -> dict[str, Any]:
    template, matches = decode(str(ROOT / "template.yaml"))
    assert not matches, [str(match) for match in matches]
    assert isinstance(template, dict)
    return template


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def _translated() -> dict[str, Any]:
    template = json.loads(json.dumps(_template()))
    for resource in template["Resources"].values():
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://audit-trail-artifacts/code.zip"
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": "us-east-1"}):
        translated = transform(template, {}, _NoManagedPolicies())
    assert isinstance(translated, dict)
    return translated


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource(name: str) -> dict[str, Any]:
    resource = _template()["Resources"][name]
    assert isinstance(resource, dict)
    return resource


def test_digest_bucket_is_locked_versioned_private_encrypted_and_kept() -> None:
    """Given the digest bucket, Then Object Lock COMPLIANCE is its default for DigestLockDays, versions are kept,
    nothing is public, objects are encrypted, and the bucket outlives the stack."""
    bucket = _resource("DigestBucket")
    properties = bucket["Properties"]

    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert properties["ObjectLockEnabled"] is True
    assert properties["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": {"Ref": "DigestLockDays"}}},
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(properties["PublicAccessBlockConfiguration"]) == 4
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_digest_lock_days_parameter_matches_the_settings_model() -> None:
    parameter = _template()["Parameters"]["DigestLockDays"]
    field = Settings.model_fields["digest_lock_days"]
    assert parameter["Default"] == field.default == 2555
    assert (parameter["MinValue"], parameter["MaxValue"]) == (1, 36500)


def test_digest_bucket_policy_refuses_plain_http_and_unlocked_uploads() -> None:
    statements = {s["Sid"]: s for s in _resource("DigestBucketPolicy")["Properties"]["PolicyDocument"]["Statement"]}
    insecure, unlocked = statements["DenyInsecureTransport"], statements["DenyUploadsWithoutComplianceLock"]
    assert (insecure["Effect"], insecure["Principal"], insecure["Action"]) == ("Deny", "*", "s3:*")
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert (unlocked["Effect"], unlocked["Action"]) == ("Deny", "s3:PutObject")
    assert unlocked["Condition"] == {"StringNotEquals": {"s3:object-lock-mode": "COMPLIANCE"}}


def test_only_the_anchor_reaches_the_digest_bucket_and_only_to_write_read_and_list() -> None:
    """Given the template after the SAM transform, Then the digest policy grants exactly write-once, read and list on
    the digest bucket (no delete), and only the anchor function's role has it."""
    resources = _translated()["Resources"]
    statements = _as_list(resources["DigestWritePolicy"]["Properties"]["PolicyDocument"]["Statement"])
    granted = {action for statement in statements for action in _as_list(statement["Action"])}
    attached = {
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::IAM::Role"
        and {"Ref": "DigestWritePolicy"} in resource["Properties"].get("ManagedPolicyArns", [])
    }

    assert granted == DIGEST_ACTIONS
    for statement in statements:
        assert statement["Effect"] == "Allow"
        expected = (
            {"Fn::GetAtt": ["DigestBucket", "Arn"]}
            if statement["Action"] == "s3:ListBucket"
            else {"Fn::Sub": "${DigestBucket.Arn}/*"}
        )
        assert statement["Resource"] == expected
    assert attached == {"AnchorFunctionRole"}


def test_signing_key_is_asymmetric_and_only_the_anchor_role_may_sign() -> None:
    """Given the signing key, Then it is an ECC P-256 SIGN_VERIFY key kept beyond the stack; the account
    administers it and may verify but not sign; the anchor's role signs; an explicit Deny covers everyone else."""
    key = _resource("SigningKey")
    properties = key["Properties"]
    role_arn = {"Fn::GetAtt": ["AnchorFunctionRole", "Arn"]}

    assert (properties["KeySpec"], properties["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")
    statements = {s["Sid"]: s for s in properties["KeyPolicy"]["Statement"]}
    for sid, statement in statements.items():
        if statement["Effect"] != "Allow":
            continue
        signs = any(fnmatch.fnmatchcase("kms:sign", action.lower()) for action in _as_list(statement["Action"]))
        assert signs == (statement["Principal"] == {"AWS": role_arn}), sid
    assert set(_as_list(statements["OnlyTheAnchorSigns"]["Action"])) == {"kms:Sign", "kms:GetPublicKey"}
    deny = statements["NobodyElseSigns"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "kms:Sign")
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": role_arn}}


def _actions(value: Any) -> list[str]:
    """Every action string under an "Action" key anywhere in a value (through Fn::If and the like)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Action":
                found += [action for action in _as_list(item) if isinstance(action, str)]
            else:
                found += _actions(item)
    elif isinstance(value, list):
        for item in value:
            found += _actions(item)
    return found


def test_no_iam_statement_grants_kms_sign() -> None:
    """The key policy is the only grant of kms:Sign: no role or managed policy in the stack carries one."""
    for name, resource in _translated()["Resources"].items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            for action in _actions(resource["Properties"]):
                if action.lower().startswith("sts:"):
                    continue
                assert not fnmatch.fnmatchcase("kms:sign", action.lower()), (name, action)


def test_anchor_function_is_configured_through_the_settings_model() -> None:
    """Given the anchor function's environment, Then every AUDIT_ variable is a Settings field, and it names the
    digest bucket, its lock days and the signing key alias."""
    properties = _resource("AnchorFunction")["Properties"]
    variables = properties["Environment"]["Variables"]
    fields = {f"AUDIT_{name.upper()}" for name in Settings.model_fields}

    assert properties["Handler"] == "anchor.handler.lambda_handler"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "anchor"
    assert {name for name in variables if name.startswith("AUDIT_")} <= fields
    assert variables["AUDIT_DIGEST_BUCKET"] == {"Ref": "DigestBucket"}
    assert variables["AUDIT_DIGEST_LOCK_DAYS"] == {"Ref": "DigestLockDays"}
    assert variables["AUDIT_SIGNING_KEY_ID"] == {"Fn::Sub": "alias/${AWS::StackName}-digest-signing"}
    alias = _resource("SigningKeyAlias")["Properties"]
    assert alias == {"AliasName": variables["AUDIT_SIGNING_KEY_ID"], "TargetKeyId": {"Ref": "SigningKey"}}
    assert properties["Policies"] == [{"Ref": "DatabaseSecretReadPolicy"}, {"Ref": "DigestWritePolicy"}]
    assert properties["ReservedConcurrentExecutions"] == 1


def test_anchor_runs_hourly_with_the_sample_input_retries_and_a_dead_letter_queue() -> None:
    properties = _resource("AnchorFunction")["Properties"]
    (schedule,) = (event["Properties"] for event in properties["Events"].values() if event["Type"] == "ScheduleV2")
    sample = json.loads((ROOT / "events" / "anchor" / "hourly_schedule.json").read_text())

    assert schedule["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert json.loads(schedule["Input"]) == sample == {"action": "anchor"}
    assert schedule["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AnchorDeadLetterQueue", "Arn"]}}
    on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["AnchorDeadLetterQueue", "Arn"]}}


def test_ingest_serves_the_proof_routes_from_the_database_alone() -> None:
    properties = _resource("IngestFunction")["Properties"]
    routes = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in properties["Events"].values()
        if event["Type"] == "Api"
    }
    assert {("GET", "/events/{event_id}/proof"), ("GET", "/integrity/consistency")} <= routes
    # tiles, digests and public keys are in the database: no S3 or KMS grant for the API function
    assert properties["Policies"] == [{"Ref": "DatabaseSecretReadPolicy"}]


class _RecordingS3:
    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.puts.append(request)
        return {}


def test_digest_store_uploads_what_the_bucket_policy_accepts() -> None:
    """Given the digest store writing a digest and a public key, Then each upload is conditional, states the
    COMPLIANCE lock the bucket policy demands and the bucket's encryption, and carries the signature metadata."""
    s3 = _RecordingS3()
    store = DigestStore("digest-bucket", lock_days=2555, client=s3)  # type: ignore[arg-type]
    until = datetime(2033, 11, 27, tzinfo=UTC)
    (encryption,) = _resource("DigestBucket")["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert store.put_digest("digests/default/0000000001.json", b"{}", "c2ln", until)
    assert store.put_public_key("digests/default/public-keys/k.pem", "-----BEGIN PUBLIC KEY-----\n", until)

    for put in s3.puts:
        assert put["IfNoneMatch"] == "*"
        assert (put["ObjectLockMode"], put["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", until)
        assert put["ServerSideEncryption"] == encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert put["ChecksumAlgorithm"] == "SHA256"
    assert s3.puts[0]["Metadata"][SIGNATURE_METADATA_KEY] == "c2ln"


def test_outputs_name_the_digest_bucket_the_key_and_the_queue() -> None:
    outputs = _template()["Outputs"]
    assert outputs["DigestBucketName"]["Value"] == {"Ref": "DigestBucket"}
    assert outputs["SigningKeyArn"]["Value"] == {"Fn::GetAtt": ["SigningKey", "Arn"]}
    assert outputs["AnchorDeadLetterQueueUrl"]["Value"] == {"Ref": "AnchorDeadLetterQueue"}
