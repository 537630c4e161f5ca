"""Local AWS: a moto server, and the template's resources created in it.

Buckets (with their Object Lock, versioning and encryption), the event bus, topics, queues, KMS keys
(with their KeySpec and KeyUsage) and secrets are created from their template definitions; their
physical names and ARNs are recorded in the template, so the functions' environment resolves to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import boto3

from audit_trail.local.template import ACCOUNT_ID, REGION, STACK_NAME, Template

# moto accepts any credentials; these only keep boto3 from looking for real ones.
FAKE_CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@contextlib.contextmanager
def _quiet_moto() -> Iterator[None]:
    # ThreadedMotoServer prints a banner on start and werkzeug logs every request: ours says it once.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class MotoServer:
    """moto's threaded server on 127.0.0.1 (port 0: any free port)."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> str:
        """Start serving, from an empty AWS; return the endpoint URL.

        moto keeps its state per process, not per server: a stack started after another in the same
        process (tests, notebooks) would find the first one's buckets and secrets and fail to create its
        own. Each stack starts from a clean account instead, as a fresh `audit-trail local` does.
        """
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        with _quiet_moto():
            self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        """Stop serving (moto's in-memory state goes with it when the process ends)."""
        if self.endpoint:
            self._server.stop()
            self.endpoint = ""


def client_env(endpoint: str) -> dict[str, str]:
    """What boto3 needs to talk to the local AWS: its endpoint, throwaway credentials, the region."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **FAKE_CREDENTIALS,
    }


@dataclass
class Provisioned:
    """What was created, for the startup summary."""

    buckets: dict[str, str] = field(default_factory=dict)
    object_locked: set[str] = field(default_factory=set)
    buses: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    key_fingerprints: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each signing key's DER public key, by logical id: what the stack publishes for verifiers."""
    secrets: dict[str, str] = field(default_factory=dict)


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _physical_name(logical_id: str, given: Any, limit: int = 63) -> str:
    """The resource's own name when the template gives one, else CloudFormation's `<stack>-<logical id>` style."""
    if isinstance(given, str) and given:
        return given
    return f"{STACK_NAME}-{logical_id}".lower()[:limit]


def _tags(props: dict[str, Any]) -> list[dict[str, str]]:
    tags = props.get("Tags") or []
    if isinstance(tags, dict):  # SAM-style {key: value}
        return [{"Key": str(k), "Value": str(v)} for k, v in tags.items()]
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in tags]


def create_buckets(template: Template, endpoint: str, done: Provisioned) -> None:
    """S3 buckets with Object Lock (default retention), versioning, encryption and public access block."""
    s3 = _client("s3", endpoint)
    for logical_id in template.of_type("AWS::S3::Bucket"):
        props = template.properties(logical_id)
        name = _physical_name(logical_id, props.get("BucketName"))
        locked = bool(props.get("ObjectLockEnabled"))
        s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
        if (props.get("VersioningConfiguration") or {}).get("Status"):
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        lock = props.get("ObjectLockConfiguration")
        if locked and lock:
            rule = (lock.get("Rule") or {}).get("DefaultRetention")
            config: dict[str, Any] = {"ObjectLockEnabled": "Enabled"}
            if rule:
                retention = {"Mode": rule["Mode"]}
                retention.update({k: int(rule[k]) for k in ("Days", "Years") if k in rule})
                config["Rule"] = {"DefaultRetention": retention}
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=config)
        if props.get("BucketEncryption"):
            # CloudFormation says ServerSideEncryptionByDefault where the S3 API says Apply...
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
                }
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        template.physical[logical_id] = {
            "Ref": name,
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        }
        done.buckets[logical_id] = name
        if locked:
            done.object_locked.add(logical_id)


def create_keys(template: Template, endpoint: str, done: Provisioned) -> None:
    """KMS keys with their KeySpec and KeyUsage (asymmetric signing keys included), and their aliases."""
    kms = _client("kms", endpoint)
    for logical_id in template.of_type("AWS::KMS::Key"):
        props = template.properties(logical_id)
        created = kms.create_key(
            Description=str(props.get("Description", logical_id)),
            KeySpec=str(props.get("KeySpec", "SYMMETRIC_DEFAULT")),
            KeyUsage=str(props.get("KeyUsage", "ENCRYPT_DECRYPT")),
            Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(props)],
        )["KeyMetadata"]
        template.physical[logical_id] = {"Ref": created["KeyId"], "Arn": created["Arn"], "KeyId": created["KeyId"]}
        done.keys[logical_id] = f"{created['KeyId']} ({props.get('KeySpec', 'SYMMETRIC_DEFAULT')})"
        if created.get("KeyUsage") == "SIGN_VERIFY":
            # Published as the operator would publish it (audit-trail keys fingerprint): verifiers pin it.
            der = kms.get_public_key(KeyId=created["Arn"])["PublicKey"]
            done.key_fingerprints[logical_id] = hashlib.sha256(der).hexdigest()
    for logical_id in template.of_type("AWS::KMS::Alias"):
        props = template.properties(logical_id)
        kms.create_alias(AliasName=str(props["AliasName"]), TargetKeyId=str(props["TargetKeyId"]))
        template.physical[logical_id] = {"Ref": str(props["AliasName"])}


def create_messaging(template: Template, endpoint: str, done: Provisioned) -> None:
    """Event buses, SNS topics and SQS queues."""
    events, sns, sqs = _client("events", endpoint), _client("sns", endpoint), _client("sqs", endpoint)
    for logical_id in template.of_type("AWS::Events::EventBus"):
        props = template.properties(logical_id)
        name = _physical_name(logical_id, props.get("Name"), 256)
        arn = events.create_event_bus(Name=name)["EventBusArn"]
        template.physical[logical_id] = {"Ref": name, "Arn": arn, "Name": name}
        done.buses[logical_id] = name
    for logical_id in template.of_type("AWS::SNS::Topic"):
        props = template.properties(logical_id)
        name = _physical_name(logical_id, props.get("TopicName"), 256)
        arn = sns.create_topic(Name=name)["TopicArn"]
        template.physical[logical_id] = {"Ref": arn, "TopicArn": arn, "TopicName": name}
        done.topics[logical_id] = arn
    for logical_id in template.of_type("AWS::SQS::Queue"):
        props = template.properties(logical_id)
        name = _physical_name(logical_id, props.get("QueueName"), 80)
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        template.physical[logical_id] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}
        done.queues[logical_id] = url


def create_secret(endpoint: str, name: str, value: str) -> str:
    """A Secrets Manager secret (the local stand-in for one the template references by ARN); its ARN."""
    secrets = _client("secretsmanager", endpoint)
    return str(secrets.create_secret(Name=name, SecretString=value)["ARN"])


def provision(template: Template, endpoint: str) -> Provisioned:
    """Create every supported resource of the template in the moto server at `endpoint`."""
    done = Provisioned()
    steps: list[Callable[[Template, str, Provisioned], None]] = [create_keys, create_buckets, create_messaging]
    for step in steps:
        step(template, endpoint, done)
    for logical_id in template.of_type("AWS::SecretsManager::Secret"):
        props = template.properties(logical_id)
        name = _physical_name(logical_id, props.get("Name"), 256)
        arn = create_secret(endpoint, name, str(props.get("SecretString", "")))
        template.physical[logical_id] = {"Ref": arn, "Id": arn}
        done.secrets[logical_id] = arn
    return done
