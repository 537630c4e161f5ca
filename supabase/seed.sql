-- Demo events for `supabase db reset` / `supabase start`.
-- Written through the SQL API, so the database chains them like any other event. The
-- checksums were computed by the ingest code (seal version 2, docs/integrity.md; the salts are
-- fixed here so the file is stable: in use each is random);
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
    "checksum": "233bd8ab1b157bafe09b04a216c9e3b47a284120a53ffd871d9f299d7cb4d40a",
    "seal_salt": "ad3024da15062a07821d1ab35c196d1f",
    "payload_commitment": "631fa46dd077a84ee4b0608760ae068f76d83fe12ac55f3b90878c7abce7691c"
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
    "checksum": "3d820d74dad26ce2e12deb7d9d39b750413b6e36cce1bf42f3bd0da64c656a27",
    "seal_salt": "0246a0dbff311062b3452eb64e5b3cb3",
    "payload_commitment": "be01fa7ab3c7e6919193497cc9ae70a3879dbcaa9acaa2e374e8ea41d15edc50"
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
    "checksum": "2a75fc48542d13ed9273d48549f1b71ad6e9980a011cb2ebcb482401a2269863",
    "seal_salt": "175a7141c46f4fa2b79fc00af81081f6",
    "payload_commitment": "c6dbd8d2fee8bb77ad52c5cca0c18d5959c2144801cdde8b7139098d46f599a7"
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
    "checksum": "28958085c9ac2c050465918137b759d43e95a298c12007c1848356d4c907c4fc",
    "seal_salt": "1f7663a15684a369c9dc109e44c50ab5",
    "payload_commitment": "6d11af018aba37736ea58542c1068d317a725b12795c786a8fdefb0778fd4f0a"
  }
]
$seed$::json);
