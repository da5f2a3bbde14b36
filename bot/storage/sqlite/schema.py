"""The SQLite schema as numbered migrations, applied in order; ``PRAGMA user_version`` records the
last one applied, so an existing file is migrated, never rebuilt. Never edit a shipped migration:
append a new one."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        requester TEXT NOT NULL,
        status TEXT NOT NULL,
        form TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        approval_channel TEXT,
        approval_ts TEXT,
        decided_by TEXT,
        decided_at TEXT,
        reason TEXT,
        error TEXT
    );
    CREATE INDEX requests_requester ON requests(requester);
    CREATE INDEX requests_status ON requests(status);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        request_id TEXT,
        actor TEXT,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_at ON audit(at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE secrets (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL REFERENCES requests(id),
        recipient TEXT NOT NULL,
        user_name TEXT NOT NULL,
        nonce BLOB,
        ciphertext BLOB,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revealed_at TEXT
    );
    CREATE INDEX secrets_request ON secrets(request_id);
    CREATE TABLE seen_events (
        event_id TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    """,
    # 2: the one-time link's life after sealing: key id, notices, expiry, re-issue.
    """
    ALTER TABLE secrets ADD COLUMN access_key_id TEXT;
    ALTER TABLE secrets ADD COLUMN console INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE secrets ADD COLUMN replaces TEXT;
    ALTER TABLE secrets ADD COLUMN notice_channel TEXT;
    ALTER TABLE secrets ADD COLUMN notice_ts TEXT;
    ALTER TABLE secrets ADD COLUMN alerted_at TEXT;
    ALTER TABLE secrets ADD COLUMN expired_at TEXT;
    ALTER TABLE secrets ADD COLUMN expiry_done_at TEXT;
    ALTER TABLE secrets ADD COLUMN reissued_at TEXT;
    ALTER TABLE secrets ADD COLUMN reissued_by TEXT;
    CREATE INDEX secrets_state_expiry ON secrets(state, expires_at);
    """,
    # 3: drafts of the multi-view request form, keyed by Slack view id (never a plaintext secret).
    """
    CREATE TABLE wizard_drafts (
        view_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX wizard_drafts_updated ON wizard_drafts(updated_at);
    """,
    # 4: provisioning journal. Each plan step is recorded before and after its IAM call, so a
    # restarted server resumes or rolls back instead of guessing. A lease on the request (owner +
    # expiry) lets exactly one process work on a provisioning request. The journal and the stored
    # plan hold names, ARNs, access key ids and IAM error codes: never a password or a secret key.
    """
    ALTER TABLE requests ADD COLUMN lease_owner TEXT;
    ALTER TABLE requests ADD COLUMN lease_until TEXT;
    CREATE TABLE provisioning_plans (
        request_id TEXT PRIMARY KEY REFERENCES requests(id),
        plan TEXT NOT NULL,
        console_url TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE journal (
        request_id TEXT NOT NULL REFERENCES requests(id),
        step_index INTEGER NOT NULL,
        label TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('started', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 1,
        detail TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (request_id, step_index)
    );
    """,
    # 5: approval review: what the request grants (read from IAM at filing) and its risk flags,
    # distinct approvers (a sensitive request needs several), the fingerprint of the approved
    # plan, and the half-life reminder marker (set by compare-and-set: one worker sends it).
    """
    ALTER TABLE requests ADD COLUMN review TEXT;
    ALTER TABLE requests ADD COLUMN approvals_required INTEGER;
    ALTER TABLE requests ADD COLUMN fingerprint TEXT;
    ALTER TABLE requests ADD COLUMN reminded_at TEXT;
    CREATE TABLE approvals (
        request_id TEXT NOT NULL REFERENCES requests(id),
        approver TEXT NOT NULL,
        at TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (request_id, approver)
    );
    CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
        BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
    CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
        BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
    """,
    # 6: a stolen database can neither address nor burn a link. A secret's id becomes the SHA-256
    # of its link id (bot.domain.ids.link_digest, registered on every connection), here and in
    # the audit log (whose no-update trigger is lifted for this one rewrite and put back). The
    # overwritten pages are zeroed (secure_delete) and the WAL truncated after migrating.
    """
    UPDATE secrets SET id = link_digest(id), replaces = link_digest(replaces);
    DROP TRIGGER audit_no_update;
    UPDATE audit SET detail = json_set(detail, '$.secret_id', link_digest(json_extract(detail, '$.secret_id')))
        WHERE json_type(detail, '$.secret_id') = 'text';
    UPDATE audit SET detail = json_set(detail, '$.replaces', link_digest(json_extract(detail, '$.replaces')))
        WHERE json_type(detail, '$.replaces') = 'text';
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 7: the users' life after onboarding. One key rotation record per IAM user (the state table's
    # rotation moves; key ids and the digest of the new link, never a secret), and lifecycle
    # findings (a key due for rotation, an owner who left, an unused credential), each opened once.
    """
    CREATE TABLE rotations (
        user_name TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('started', 'key_created', 'delivered', 'completed', 'failed')),
        old_key_id TEXT NOT NULL,
        kept_key_ids TEXT NOT NULL DEFAULT '[]',
        new_key_id TEXT,
        secret_id TEXT,
        owner TEXT NOT NULL,
        request_id TEXT NOT NULL,
        error TEXT,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX rotations_state ON rotations(state, updated_at);
    CREATE TABLE findings (
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
        detail TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        resolved_at TEXT,
        PRIMARY KEY (kind, subject)
    );
    CREATE INDEX findings_open ON findings(kind, state, created_at);
    """,
    # 8: a one-time link's record and a key rotation's carry their seal (bot.domain.seal.RecordSeal: an HMAC under a key
    # the store never holds), so a record copied or edited by a store writer is refused. Rows
    # written before stay NULL: the bot seals them once, at the start-up that applies this.
    """
    ALTER TABLE secrets ADD COLUMN seal TEXT;
    ALTER TABLE rotations ADD COLUMN seal TEXT;
    CREATE TABLE upgrades (name TEXT PRIMARY KEY);
    INSERT INTO upgrades (name) SELECT 'seal_link_records'
        WHERE EXISTS (SELECT 1 FROM secrets) OR EXISTS (SELECT 1 FROM rotations);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
