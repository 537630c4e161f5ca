-- Demo events for `supabase db reset` / `supabase start`.
-- Written through the SQL API, so the database chains them like any other event. The
-- checksums were computed by the ingest code (RFC 8785 + SHA-256, docs/integrity.md);
-- tests/integration/test_seed.py applies this file and verifies the chain, so a wrong
-- checksum here fails the build.
select audit.ingest_events($seed$
[
  {
    "event_id": "seed-0001",
    "timestamp": "2026-11-27T08:00:00.000000Z",
    "event_type": "user_login",
    "user_id": "11111111-1111-4111-8111-111111111111",
    "user_email": "alice@example.com",
    "session_id": "sess-a1",
    "ip_address": "192.168.1.100",
    "user_agent": "Mozilla/5.0",
    "resource_path": "/auth/login",
    "resource_id": null,
    "action": "login",
    "status": "success",
    "details": {
      "method": "password",
      "mfa": true
    },
    "security_level": "low",
    "compliance_tags": [
      "iso_27001"
    ],
    "parent_event_id": null,
    "metadata": {},
    "checksum": "32e4affc854d87f27431c9f77e3ea9f0d14d088c5de6da39316944b6764a0aa6"
  },
  {
    "event_id": "seed-0002",
    "timestamp": "2026-11-27T08:01:30.250000Z",
    "event_type": "file_upload",
    "user_id": "11111111-1111-4111-8111-111111111111",
    "user_email": "alice@example.com",
    "session_id": "sess-a1",
    "ip_address": "192.168.1.100",
    "user_agent": "Mozilla/5.0",
    "resource_path": "/documents/quarterly_report.pdf",
    "resource_id": "doc-42",
    "action": "upload_report",
    "status": "success",
    "details": {
      "file_size": 2048576,
      "department": "finance"
    },
    "security_level": "medium",
    "compliance_tags": [
      "sox"
    ],
    "parent_event_id": null,
    "metadata": {},
    "checksum": "5c9b8457c45b994648c9111492914ad2698d88f25584f295a6e7a191c9119039"
  },
  {
    "event_id": "seed-0003",
    "timestamp": "2026-11-27T08:05:12.000000Z",
    "event_type": "user_login",
    "user_id": "22222222-2222-4222-8222-222222222222",
    "user_email": "bob@example.com",
    "session_id": null,
    "ip_address": "2001:db8::7",
    "user_agent": "curl/8.4.0",
    "resource_path": "/auth/login",
    "resource_id": null,
    "action": "login",
    "status": "failure",
    "details": {
      "reason": "bad_password"
    },
    "security_level": "medium",
    "compliance_tags": [
      "pci_dss"
    ],
    "parent_event_id": null,
    "metadata": {},
    "checksum": "fb94e399018d79565021dca2c47b676463b48a760822698b56ad9a747efaead6"
  },
  {
    "event_id": "seed-0004",
    "timestamp": "2026-11-27T08:07:45.500000Z",
    "event_type": "permission_change",
    "user_id": "33333333-3333-4333-8333-333333333333",
    "user_email": "carol@example.com",
    "session_id": "sess-c9",
    "ip_address": "10.0.0.5",
    "user_agent": null,
    "resource_path": "/documents/finance/",
    "resource_id": null,
    "action": "grant_role",
    "status": "success",
    "details": {
      "target_user": "22222222-2222-4222-8222-222222222222",
      "role": "editor",
      "previous_role": "viewer"
    },
    "security_level": "high",
    "compliance_tags": [
      "iso_27001",
      "sox"
    ],
    "parent_event_id": null,
    "metadata": {},
    "checksum": "b422a1021a6f7195444854e89c93aa951aa754509eddbbd45e423aedecd625fc"
  }
]
$seed$::json);
