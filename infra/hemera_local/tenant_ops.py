"""Onboarding and offboarding a tenant in AWS or on the local cloud (`hemera tenant apply|offboard`).

`apply` makes the account match a tenant file and reports each change; a second run finds
everything in place and changes nothing. It writes the registry items (through
`hemera.services.onboarding.register_tenant`), the IoT registry entries (a thing group per tenant,
a thing per RTU with `tenant`/`device` attributes, one certificate per thing, the tenant's IoT
policy from `hemera.domain.policies`), an API key when the tenant has none, the tenant's SNS
notification topic with the file's e-mail channels subscribed, the delivery channels the notify
function fans out to (topic + webhooks) and, for a tenant with webhooks, its signing secret in
Secrets Manager (shown once). S3 needs nothing: a tenant's prefixes exist as soon as an object is
written under them.

`offboard` writes every item, object and IoT entry of the tenant to a local tar.gz archive with a
manifest (counts and SHA-256 of every member), checks the archive, then deletes all of it (the
webhook signing secret too, without recovery window) and lists what remains. Every listing is bounded by the tenant's delimited prefix (`T#<t>#`,
`tenants/<t>/`), so `acme` never reaches `acme-corp`.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hemera import aws
from hemera.adapters.notifications_dynamodb import DynamoChannelDirectory, notification_models
from hemera.adapters.notifications_secrets import SecretsManagerSigningSecrets
from hemera.config import RuntimeSettings
from hemera.definitions import CURATED_INTERVALS
from hemera.domain.notifications import (
    ChannelKind,
    delivery_channels,
    tenant_topic_name,
    webhook_secret_name,
)
from hemera.domain.policies import (
    DEVICE_ID_ATTRIBUTE,
    DEVICE_TENANT_ATTRIBUTE,
    device_policy,
    iot_arn_builder,
    tenant_iot_policy_name,
    tenant_object_prefixes,
)
from hemera.domain.tenancy import (
    META_SK,
    TENANTS_PK,
    TenantContext,
    tenant_listing_sk,
    thing_name,
    validate_id,
)
from hemera.services.access import issue_api_key
from hemera.services.notifications import configure_channels
from hemera.services.onboarding import onboard_tenant
from hemera.tenants import TenantDefinition
from hemera.wiring import onboarding_stores, portal_ports
from hemera_local.pki import LocalPki

CREATED, UPDATED, UNCHANGED, DELETED = "created", "updated", "unchanged", "deleted"


def thing_group_name(tenant_id: str) -> str:
    return f"hemera-tenant-{validate_id(tenant_id, 'tenant')}"


def notification_topic_name(tenant_id: str) -> str:
    # One convention, in the domain: the deliver function publishes to the same name.
    return tenant_topic_name(tenant_id)


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # "registry", "thing group", "thing", "certificate", "iot policy", …
    name: str
    action: str  # CREATED, UPDATED, UNCHANGED, DELETED


@dataclass
class ApplyReport:
    tenant_id: str
    changes: list[Change] = field(default_factory=list)
    # Shown once: only its hash is stored.
    api_key: str | None = None
    # Shown once: the webhook signing secret, kept in Secrets Manager (tenants with webhooks).
    webhook_secret: str | None = None

    def add(self, kind: str, name: str, action: str) -> None:
        self.changes.append(Change(kind, name, action))

    @property
    def changed(self) -> bool:
        return any(c.action != UNCHANGED for c in self.changes)


@dataclass(frozen=True, slots=True)
class Remaining:
    """What is left of a tenant: all zero after an offboard."""

    items: int
    api_keys: int
    objects: int
    things: int
    certificates: int
    policies: int
    thing_groups: int
    topics: int
    secrets: int = 0

    @property
    def total(self) -> int:
        return sum(
            (
                self.items,
                self.api_keys,
                self.objects,
                self.things,
                self.certificates,
                self.policies,
                self.thing_groups,
                self.topics,
                self.secrets,
            )
        )


@dataclass
class OffboardReport:
    tenant_id: str
    archive: Path
    manifest: dict[str, Any]
    remaining: Remaining


class ArchiveMismatch(RuntimeError):
    """The archive just written does not read back as its manifest says: nothing was deleted."""


# How each thing gets its certificate: `provision` has IoT Core create key and certificate (AWS;
# the private key is written to the local credentials folder and nowhere else); `register`
# registers a certificate of the local cloud's CA, the one its broker trusts.
CertificateMode = str
PROVISION, REGISTER = "provision", "register"


class TenantOperations:
    """`apply` and `offboard` against one AWS target (real AWS, moto server or in-process moto)."""

    def __init__(
        self,
        settings: RuntimeSettings,
        credentials_dir: Path,
        certificate_mode: CertificateMode = PROVISION,
        local_pki: LocalPki | None = None,
    ) -> None:
        if certificate_mode == REGISTER and local_pki is None:
            raise ValueError("registering local certificates needs the local cloud's PKI")
        self.settings = settings
        self.credentials_dir = credentials_dir
        self.certificate_mode = certificate_mode
        self.local_pki = local_pki
        self._iot = aws.client(settings.aws, "iot")
        self._sns = aws.client(settings.aws, "sns")
        self._ddb = aws.client(settings.aws, "dynamodb")
        self._s3 = aws.client(settings.aws, "s3")
        self._secrets = SecretsManagerSigningSecrets(aws.client(settings.aws, "secretsmanager"), cache_s=0)
        self._channels = DynamoChannelDirectory(
            notification_models(
                settings.readings_table, settings.aws, aws.endpoint_url(settings.aws, "dynamodb")
            )
        )

    # --- apply ---------------------------------------------------------------------------------
    def apply(self, tenant: TenantDefinition) -> ApplyReport:
        # A webhook that is not https fails the apply before anything is changed.
        delivery_channels(tenant.id, [(c.kind, c.target) for c in tenant.notifications])
        report = ApplyReport(tenant.id)
        self._apply_registry(tenant, report)
        self._apply_policy(tenant.id, report)
        group_arn = self._apply_thing_group(tenant.id, report)
        for rtu in tenant.rtus:
            self._apply_thing(tenant.id, rtu.id, group_arn, report)
        self._apply_api_key(tenant.id, report)
        self._apply_notifications(tenant, report)
        return report

    def apply_notifications(self, tenant: TenantDefinition) -> ApplyReport:
        """Only the tenant's notification set-up (topic, e-mail subscriptions, delivery channels,
        webhook signing secret): what the local cloud adds to its own registration of a tenant."""
        delivery_channels(tenant.id, [(c.kind, c.target) for c in tenant.notifications])
        report = ApplyReport(tenant.id)
        self._apply_notifications(tenant, report)
        return report

    def _registry_snapshot(self, tenant: TenantDefinition) -> list[dict[str, Any]]:
        ctx = TenantContext(tenant.id)
        keys = [ctx.tenant_pk(), *(ctx.meter_pk(m.id) for m in tenant.meters)]
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request = {
                self.settings.readings_table: {
                    "Keys": [{"pk": {"S": pk}, "sk": {"S": META_SK}} for pk in keys[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                answer = self._ddb.batch_get_item(RequestItems=request)
                items += answer["Responses"].get(self.settings.readings_table, [])
                request = answer.get("UnprocessedKeys") or {}
        return sorted(items, key=lambda item: str(item["pk"]["S"]))

    def _apply_registry(self, tenant: TenantDefinition, report: ApplyReport) -> None:
        before = self._registry_snapshot(tenant)
        onboard_tenant(onboarding_stores(self.settings), tenant)
        after = self._registry_snapshot(tenant)
        action = UNCHANGED if before == after else CREATED if not before else UPDATED
        report.add("registry", f"tenant and {len(tenant.meters)} meters", action)

    def _apply_policy(self, tenant_id: str, report: ApplyReport) -> None:
        name = tenant_iot_policy_name(tenant_id)
        document = device_policy(self._iot_arn(), tenant_id)
        try:
            current = self._iot.get_policy(policyName=name)
        except self._iot.exceptions.ResourceNotFoundException:
            self._iot.create_policy(policyName=name, policyDocument=json.dumps(document))
            report.add("iot policy", name, CREATED)
            return
        if json.loads(current["policyDocument"]) == document:
            report.add("iot policy", name, UNCHANGED)
            return
        # IoT keeps at most five versions: drop the old non-default ones before adding one.
        for version in self._iot.list_policy_versions(policyName=name)["policyVersions"]:
            if not version["isDefaultVersion"]:
                self._iot.delete_policy_version(policyName=name, policyVersionId=version["versionId"])
        self._iot.create_policy_version(
            policyName=name, policyDocument=json.dumps(document), setAsDefault=True
        )
        report.add("iot policy", name, UPDATED)

    def _iot_arn(self) -> Callable[[str, str], str]:
        account = aws.client(self.settings.aws, "sts").get_caller_identity()["Account"]
        return iot_arn_builder(self.settings.aws.region, account)

    def _apply_thing_group(self, tenant_id: str, report: ApplyReport) -> str:
        name = thing_group_name(tenant_id)
        try:
            arn = str(self._iot.describe_thing_group(thingGroupName=name)["thingGroupArn"])
            report.add("thing group", name, UNCHANGED)
        except self._iot.exceptions.ResourceNotFoundException:
            arn = str(self._iot.create_thing_group(thingGroupName=name)["thingGroupArn"])
            report.add("thing group", name, CREATED)
        return arn

    def _apply_thing(self, tenant_id: str, device_id: str, group_arn: str, report: ApplyReport) -> None:
        name = thing_name(tenant_id, device_id)
        attributes = {DEVICE_TENANT_ATTRIBUTE: tenant_id, DEVICE_ID_ATTRIBUTE: device_id}
        try:
            thing = self._iot.describe_thing(thingName=name)
        except self._iot.exceptions.ResourceNotFoundException:
            self._iot.create_thing(thingName=name, attributePayload={"attributes": attributes})
            report.add("thing", name, CREATED)
        else:
            if thing.get("attributes", {}) != attributes:
                self._iot.update_thing(thingName=name, attributePayload={"attributes": attributes})
                report.add("thing", name, UPDATED)
            else:
                report.add("thing", name, UNCHANGED)
        groups = self._iot.list_thing_groups_for_thing(thingName=name)["thingGroups"]
        if not any(g["groupArn"] == group_arn for g in groups):
            self._iot.add_thing_to_thing_group(thingGroupArn=group_arn, thingName=name)
            report.add("group membership", name, CREATED)
        certificates = self._iot.list_thing_principals(thingName=name)["principals"]
        if not certificates:
            certificates = [self._new_certificate(tenant_id, device_id)]
            self._iot.attach_thing_principal(thingName=name, principal=certificates[0])
            report.add("certificate", name, CREATED)
        else:
            report.add("certificate", name, UNCHANGED)
        policy = tenant_iot_policy_name(tenant_id)
        for certificate in certificates:
            attached = self._iot.list_attached_policies(target=certificate)["policies"]
            if not any(p["policyName"] == policy for p in attached):
                self._iot.attach_policy(policyName=policy, target=certificate)
                report.add("policy attachment", name, CREATED)

    def _new_certificate(self, tenant_id: str, device_id: str) -> str:
        """A new active certificate for the device; returns its ARN."""
        if self.certificate_mode == REGISTER:
            assert self.local_pki
            paths = self.local_pki.client(thing_name(tenant_id, device_id))
            answer = self._iot.register_certificate_without_ca(
                certificatePem=paths.cert.read_text(), status="ACTIVE"
            )
            return str(answer["certificateArn"])
        answer = self._iot.create_keys_and_certificate(setAsActive=True)
        folder = self.tenant_credentials(tenant_id) / device_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "certificate.pem").write_text(answer["certificatePem"])
        key = folder / "private.key"
        key.write_text(answer["keyPair"]["PrivateKey"])
        key.chmod(0o600)
        return str(answer["certificateArn"])

    def tenant_credentials(self, tenant_id: str) -> Path:
        return self.credentials_dir / validate_id(tenant_id, "tenant")

    def _api_key_items(self, tenant_id: str) -> list[dict[str, Any]]:
        return list(
            _scan(
                self._ddb,
                TableName=self.settings.api_keys_table,
                FilterExpression="#t = :t",
                ExpressionAttributeNames={"#t": "tenant"},
                ExpressionAttributeValues={":t": {"S": tenant_id}},
            )
        )

    def _apply_api_key(self, tenant_id: str, report: ApplyReport) -> None:
        if self._api_key_items(tenant_id):
            report.add("api key", tenant_id, UNCHANGED)
            return
        report.api_key = issue_api_key(portal_ports(self.settings).keys, tenant_id, "hemera tenant apply")
        report.add("api key", tenant_id, CREATED)

    def _topic_arn(self, tenant_id: str) -> str | None:
        suffix = f":{notification_topic_name(tenant_id)}"
        for page in self._sns.get_paginator("list_topics").paginate():
            for topic in page["Topics"]:
                if str(topic["TopicArn"]).endswith(suffix):
                    return str(topic["TopicArn"])
        return None

    def _apply_notifications(self, tenant: TenantDefinition, report: ApplyReport) -> None:
        name = notification_topic_name(tenant.id)
        arn = self._topic_arn(tenant.id)
        if arn is None:
            arn = str(
                self._sns.create_topic(Name=name, Tags=[{"Key": "tenant", "Value": tenant.id}])["TopicArn"]
            )
            report.add("sns topic", name, CREATED)
        else:
            report.add("sns topic", name, UNCHANGED)
        subscriptions = self._sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        subscribed = {(s["Protocol"], s["Endpoint"]) for s in subscriptions}
        # Webhooks are no SNS subscriptions: the deliver function POSTs them, signed (HMAC) and
        # retried per tenant; an http(s) subscription left from before would deliver unsigned.
        for subscription in subscriptions:
            if subscription["Protocol"] in ("http", "https") and subscription["SubscriptionArn"].startswith(
                "arn:"
            ):
                self._sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
                report.add("subscription", f"{subscription['Protocol']}:{subscription['Endpoint']}", DELETED)
        for channel in tenant.notifications:
            if channel.kind == "email" and ("email", channel.target) not in subscribed:
                self._sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=channel.target)
                report.add("subscription", f"email:{channel.target}", CREATED)
        self._apply_delivery_channels(tenant, report)

    def _apply_delivery_channels(self, tenant: TenantDefinition, report: ApplyReport) -> None:
        """What the notify function fans out to (the topic and each webhook), and the tenant's
        webhook signing secret when it has a webhook."""
        before = self._channels.channels(TenantContext(tenant.id))
        changed, channels = configure_channels(
            self._channels, tenant.id, [(c.kind, c.target) for c in tenant.notifications]
        )
        action = UNCHANGED if not changed else CREATED if before is None else UPDATED
        report.add("notification channels", f"{len(channels)} channels", action)
        if any(c.kind is ChannelKind.WEBHOOK for c in channels):
            report.webhook_secret = self._secrets.create(TenantContext(tenant.id))
            name = webhook_secret_name(tenant.id)
            report.add("webhook secret", name, UNCHANGED if report.webhook_secret is None else CREATED)

    # --- offboard ------------------------------------------------------------------------------
    def _buckets(self) -> tuple[str, ...]:
        s = self.settings
        return (s.raw_bucket, s.quarantine_bucket, s.exports_bucket, s.curated_bucket)

    def _tenant_items(self, tenant_id: str) -> list[dict[str, Any]]:
        # A full scan with a delimited prefix: offboarding is rare and must find every item of the
        # tenant (series, registry, ledger…), whatever its partition key after `T#<t>#`.
        items = list(
            _scan(
                self._ddb,
                TableName=self.settings.readings_table,
                ConsistentRead=True,
                FilterExpression="begins_with(pk, :p)",
                ExpressionAttributeValues={":p": {"S": TenantContext(tenant_id).key_prefix}},
            )
        )
        # The platform's tenant list names the tenant outside its prefix (`list_tenants`).
        listing = {"pk": {"S": TENANTS_PK}, "sk": {"S": tenant_listing_sk(tenant_id)}}
        found = self._ddb.get_item(TableName=self.settings.readings_table, Key=listing, ConsistentRead=True)
        return items + ([found["Item"]] if "Item" in found else [])

    def _object_versions(self, bucket: str, tenant_id: str) -> Iterator[dict[str, Any]]:
        """Every version and delete marker under the tenant's prefixes (versioned buckets keep
        old versions after a plain delete)."""
        for prefix in tenant_object_prefixes(tenant_id, CURATED_INTERVALS.prefix):
            for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
                yield from page.get("Versions", [])
                yield from page.get("DeleteMarkers", [])

    def _tenant_things(self, tenant_id: str) -> list[str]:
        names = []
        for page in self._iot.get_paginator("list_things").paginate(
            attributeName=DEVICE_TENANT_ATTRIBUTE, attributeValue=tenant_id
        ):
            names += [t["thingName"] for t in page["things"]]
        # Belt and braces: the attribute filter is exact, the name must carry the tenant too.
        return sorted(n for n in names if n.startswith(f"{tenant_id}:"))

    def remaining(self, tenant_id: str) -> Remaining:
        things = self._tenant_things(tenant_id)
        certificates = sum(len(self._iot.list_thing_principals(thingName=t)["principals"]) for t in things)
        policies = self._exists(lambda: self._iot.get_policy(policyName=tenant_iot_policy_name(tenant_id)))
        groups = self._exists(
            lambda: self._iot.describe_thing_group(thingGroupName=thing_group_name(tenant_id))
        )
        return Remaining(
            items=len(self._tenant_items(tenant_id)),
            api_keys=len(self._api_key_items(tenant_id)),
            objects=sum(1 for b in self._buckets() for _ in self._object_versions(b, tenant_id)),
            things=len(things),
            certificates=certificates,
            policies=policies,
            thing_groups=groups,
            topics=0 if self._topic_arn(tenant_id) is None else 1,
            secrets=int(self._secrets.exists(TenantContext(tenant_id))),
        )

    def _exists(self, describe: Callable[[], Any]) -> int:
        try:
            describe()
        except self._iot.exceptions.ResourceNotFoundException:
            return 0
        return 1

    def offboard(self, tenant_id: str, archive_dir: Path) -> OffboardReport:
        ctx = TenantContext(tenant_id)
        items = self._tenant_items(ctx.tenant_id)
        api_keys = self._api_key_items(ctx.tenant_id)
        objects = [
            (bucket, version)
            for bucket in self._buckets()
            for version in self._object_versions(bucket, ctx.tenant_id)
        ]
        things = self._tenant_things(ctx.tenant_id)
        archive, manifest = self._write_archive(ctx.tenant_id, archive_dir, items, api_keys, objects, things)
        verify_archive(archive)
        self._delete_iot(ctx.tenant_id, things)
        self._delete_items(self.settings.readings_table, items, ("pk", "sk"))
        self._delete_items(self.settings.api_keys_table, api_keys, ("pk",))
        self._delete_objects(objects)
        if (arn := self._topic_arn(ctx.tenant_id)) is not None:
            self._sns.delete_topic(TopicArn=arn)
        self._secrets.delete(ctx)
        shutil.rmtree(self.tenant_credentials(ctx.tenant_id), ignore_errors=True)
        return OffboardReport(ctx.tenant_id, archive, manifest, self.remaining(ctx.tenant_id))

    def _write_archive(
        self,
        tenant_id: str,
        archive_dir: Path,
        items: list[dict[str, Any]],
        api_keys: list[dict[str, Any]],
        objects: list[tuple[str, dict[str, Any]]],
        things: list[str],
    ) -> tuple[Path, dict[str, Any]]:
        archive_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = archive_dir / f"{tenant_id}-offboard-{stamp}.tar.gz"
        members: dict[str, str] = {}
        with tarfile.open(path, "w:gz") as tar:

            def add(name: str, data: bytes) -> None:
                members[name] = hashlib.sha256(data).hexdigest()
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), int(time.time())
                tar.addfile(info, io.BytesIO(data))

            # DynamoDB JSON (typed attribute values): what BatchWriteItem takes back to restore.
            add("dynamodb/readings.jsonl", _jsonl(items))
            add("dynamodb/api-keys.jsonl", _jsonl(api_keys))
            current = [(b, v) for b, v in objects if v.get("IsLatest") and "ETag" in v]
            for bucket, version in current:
                body = self._s3.get_object(Bucket=bucket, Key=version["Key"])["Body"].read()
                add(f"s3/{bucket}/{version['Key']}", body)
            add("iot/things.json", json.dumps(self._describe_things(things), indent=2, default=str).encode())
            manifest = {
                "tenant": tenant_id,
                "created_at": datetime.now(UTC).isoformat(),
                "counts": {
                    "items": len(items),
                    "api_keys": len(api_keys),
                    "objects": len(current),
                    "object_versions": len(objects),
                    "things": len(things),
                },
                "sha256": members,
            }
            add("manifest.json", json.dumps(manifest, indent=2).encode())
        return path, manifest

    def _describe_things(self, things: list[str]) -> list[dict[str, Any]]:
        described = []
        for name in things:
            thing = self._iot.describe_thing(thingName=name)
            described.append(
                {
                    "thingName": name,
                    "attributes": thing.get("attributes", {}),
                    # Certificate ARNs only: no private key is ever in the archive.
                    "certificates": self._iot.list_thing_principals(thingName=name)["principals"],
                }
            )
        return described

    def _delete_iot(self, tenant_id: str, things: list[str]) -> None:
        policy = tenant_iot_policy_name(tenant_id)
        for name in things:
            for certificate in self._iot.list_thing_principals(thingName=name)["principals"]:
                for attached in self._iot.list_attached_policies(target=certificate)["policies"]:
                    self._iot.detach_policy(policyName=attached["policyName"], target=certificate)
                self._iot.detach_thing_principal(thingName=name, principal=certificate)
                certificate_id = certificate.rsplit("/", 1)[1]
                self._iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
                self._iot.delete_certificate(certificateId=certificate_id, forceDelete=True)
            self._iot.delete_thing(thingName=name)
        if self._exists(lambda: self._iot.get_policy(policyName=policy)):
            for version in self._iot.list_policy_versions(policyName=policy)["policyVersions"]:
                if not version["isDefaultVersion"]:
                    self._iot.delete_policy_version(policyName=policy, policyVersionId=version["versionId"])
            self._iot.delete_policy(policyName=policy)
        if self._exists(lambda: self._iot.describe_thing_group(thingGroupName=thing_group_name(tenant_id))):
            self._iot.delete_thing_group(thingGroupName=thing_group_name(tenant_id))

    def _delete_items(self, table: str, items: list[dict[str, Any]], key: tuple[str, ...]) -> None:
        for start in range(0, len(items), 25):
            request = {
                table: [
                    {"DeleteRequest": {"Key": {k: item[k] for k in key}}}
                    for item in items[start : start + 25]
                ]
            }
            while request:
                request = self._ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    def _delete_objects(self, objects: list[tuple[str, dict[str, Any]]]) -> None:
        by_bucket: dict[str, list[dict[str, str]]] = {}
        for bucket, version in objects:
            by_bucket.setdefault(bucket, []).append(
                {"Key": version["Key"], "VersionId": version["VersionId"]}
            )
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                answer = self._s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
                )
                if answer.get("Errors"):
                    raise RuntimeError(f"s3://{bucket}: could not delete {answer['Errors'][:3]}")


def _scan(ddb: Any, **request: Any) -> Iterator[dict[str, Any]]:
    for page in ddb.get_paginator("scan").paginate(**request):
        yield from page["Items"]


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(item, sort_keys=True) + "\n" for item in items).encode()


def verify_archive(path: Path) -> dict[str, Any]:
    """Read the archive back: every member the manifest lists is there with its SHA-256."""
    with tarfile.open(path, "r:gz") as tar:
        manifest_file = tar.extractfile("manifest.json")
        if manifest_file is None:
            raise ArchiveMismatch(f"{path}: no manifest")
        manifest: dict[str, Any] = json.loads(manifest_file.read())
        for name, digest in manifest["sha256"].items():
            if name == "manifest.json":
                continue
            member = tar.extractfile(name)
            if member is None or hashlib.sha256(member.read()).hexdigest() != digest:
                raise ArchiveMismatch(f"{path}: {name} does not match the manifest")
    return manifest
