/*
 * sqlite_schema.c: the persisted schema of the SQLite store (abis.db and
 * keys.db) and its forward migrations.  docs/FORMATS.md ("Store") describes
 * every table; change the two together.
 *
 * Versioning: each file's `PRAGMA user_version` holds its schema version
 * (abis.db: ABIS_STORE_SCHEMA_VERSION, keys.db: SQ_KEYS_SCHEMA_VERSION).
 * To change the schema to version N + 1:
 *   1. bump the version constant;
 *   2. append the step from N to N + 1 to sq_*_migrations (never edit an
 *      existing step: stores in the field were built by it);
 *   3. nothing else: a new store is created by running every step in order
 *      (store_sqlite.c, create_schema), so "migrated from 1" and "created at
 *      N + 1" are identical (tests/test_store.c compares their sqlite_schema).
 * Each step runs in its own transaction together with the user_version bump
 * (store_sqlite.c, migrate), so a crash leaves a file at N or at N + 1.
 *
 * Text lengths are checked in bytes (length(CAST(x AS BLOB))) because the
 * records carry fixed byte buffers (store.h).
 */
#include "store/sqlite_internal.h"

/* abis.db, schema 1: one statement per element, NULL-terminated. */
static const char *const data_v1[] = {
    "CREATE TABLE meta ("
    "  key   TEXT PRIMARY KEY NOT NULL CHECK (length(CAST(key AS BLOB)) BETWEEN 1 AND 63),"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID;",
    "CREATE TABLE segments ("
    "  id         INTEGER PRIMARY KEY,"
    "  name       TEXT NOT NULL UNIQUE CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),"
    "  created_at INTEGER NOT NULL"
    ");",
    "CREATE TABLE purposes ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL UNIQUE CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),"
    "  basis       INTEGER NOT NULL CHECK (basis IN (0, 1)),"
    "  target_fmr  REAL NOT NULL,"
    "  legal_ref   TEXT NOT NULL CHECK (length(CAST(legal_ref AS BLOB)) <= 255),"
    "  description TEXT NOT NULL CHECK (length(CAST(description AS BLOB)) <= 255),"
    "  created_at  INTEGER NOT NULL"
    ");",
    "CREATE TABLE modalities ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL UNIQUE CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),"
    "  kind        TEXT NOT NULL CHECK (length(CAST(kind AS BLOB)) BETWEEN 1 AND 15),"
    "  dim         INTEGER NOT NULL,"
    "  calibration TEXT,"
    "  created_at  INTEGER NOT NULL"
    ");",
    "CREATE TABLE subjects ("
    "  id           BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),"
    "  segment_id   INTEGER NOT NULL REFERENCES segments(id),"
    "  external_ref TEXT CHECK (external_ref IS NULL"
    "                           OR length(CAST(external_ref AS BLOB)) BETWEEN 1 AND 128),"
    "  created_at   INTEGER NOT NULL,"
    "  UNIQUE (segment_id, external_ref)"
    ");",
    "CREATE TABLE templates ("
    "  id          BLOB NOT NULL UNIQUE CHECK (length(id) = 16),"
    "  subject_id  BLOB NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,"
    "  modality_id INTEGER NOT NULL REFERENCES modalities(id),"
    "  position    INTEGER NOT NULL,"
    "  format      TEXT NOT NULL CHECK (length(CAST(format AS BLOB)) BETWEEN 1 AND 15),"
    "  quality     REAL NOT NULL,"
    "  created_at  INTEGER NOT NULL,"
    "  sealed      BLOB NOT NULL CHECK (length(sealed) > 0)"
    ");",
    "CREATE INDEX templates_by_subject ON templates(subject_id);",
    "CREATE INDEX templates_by_modality ON templates(modality_id);",
    "CREATE TABLE consents ("
    "  subject_id BLOB NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,"
    "  purpose_id INTEGER NOT NULL REFERENCES purposes(id),"
    "  granted    INTEGER NOT NULL CHECK (granted IN (0, 1)),"
    "  at         INTEGER NOT NULL,"
    "  channel    TEXT NOT NULL CHECK (length(CAST(channel AS BLOB)) <= 255),"
    "  PRIMARY KEY (subject_id, purpose_id)"
    ") WITHOUT ROWID;",
    "CREATE TABLE locks ("
    "  subject_id  BLOB NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,"
    "  modality_id INTEGER NOT NULL CHECK (modality_id >= 0),"
    "  at          INTEGER NOT NULL,"
    "  PRIMARY KEY (subject_id, modality_id)"
    ") WITHOUT ROWID;",
    "CREATE TABLE audit ("
    "  seq       INTEGER PRIMARY KEY CHECK (seq >= 1),"
    "  at        INTEGER NOT NULL,"
    "  actor     TEXT NOT NULL,"
    "  operation TEXT NOT NULL,"
    "  segment   TEXT NOT NULL,"
    "  subject   TEXT NOT NULL,"
    "  purpose   TEXT NOT NULL,"
    "  outcome   TEXT NOT NULL,"
    "  decision  TEXT NOT NULL,"
    "  detail    TEXT NOT NULL,"
    "  prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),"
    "  hash      BLOB NOT NULL CHECK (length(hash) = 32)"
    ");",
    "CREATE INDEX audit_by_subject ON audit(subject) WHERE subject <> '';",
    "CREATE TRIGGER audit_append_in_sequence BEFORE INSERT ON audit"
    "  WHEN NEW.seq IS NOT coalesce((SELECT max(seq) FROM audit), 0) + 1"
    "  BEGIN SELECT RAISE(ABORT, 'audit entries must be appended in sequence'); END;",
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END;",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END;",
    "CREATE TABLE audit_checkpoints ("
    "  id   INTEGER PRIMARY KEY,"
    "  seq  INTEGER NOT NULL CHECK (seq >= 0),"
    "  at   INTEGER NOT NULL,"
    "  head BLOB NOT NULL CHECK (length(head) = 32),"
    "  sig  BLOB NOT NULL CHECK (length(sig) = 64)"
    ");",
    "CREATE TRIGGER audit_checkpoints_in_order BEFORE INSERT ON audit_checkpoints"
    "  WHEN NEW.seq < coalesce((SELECT max(seq) FROM audit_checkpoints), 0)"
    "  BEGIN SELECT RAISE(ABORT, 'audit checkpoints must not go backwards'); END;",
    "CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints"
    "  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only: UPDATE refused'); END;",
    "CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints"
    "  BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only: DELETE refused'); END;",
    NULL,
};

/* keys.db, schema 1. */
static const char *const keys_v1[] = {
    "CREATE TABLE keys ("
    "  subject_id BLOB PRIMARY KEY NOT NULL CHECK (length(subject_id) = 16),"
    "  wrapped    BLOB NOT NULL CHECK (length(wrapped) > 0),"
    "  created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    "CREATE TABLE keymeta ("
    "  key   TEXT PRIMARY KEY NOT NULL CHECK (length(CAST(key AS BLOB)) BETWEEN 1 AND 63),"
    "  value TEXT NOT NULL"
    ") WITHOUT ROWID;",
    NULL,
};

/* abis.db, schema 2: relying parties (clients) with their rights and a
 * keyed hash of their API key, and the results of writes made with an
 * Idempotency-Key (docs/FORMATS.md, "Clients").  operations and rights are
 * bit sets (ABIS_CLIENT_OP_*, ABIS_CLIENT_RIGHT_* in abis/client.h); secret
 * is the client's pseudonym key sealed under a key derived from the master
 * key (nonce || ciphertext || tag: 24 + 32 + 16 bytes). */
static const char *const data_v2[] = {
    "CREATE TABLE clients ("
    "  id          INTEGER PRIMARY KEY,"
    "  name        TEXT NOT NULL UNIQUE CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),"
    "  key_id      TEXT NOT NULL UNIQUE CHECK (length(CAST(key_id AS BLOB)) = 16),"
    "  key_hash    BLOB NOT NULL CHECK (length(key_hash) = 32),"
    "  operations  INTEGER NOT NULL CHECK (operations >= 0),"
    "  rights      INTEGER NOT NULL CHECK (rights >= 0),"
    "  rate_limit  REAL NOT NULL CHECK (rate_limit >= 0),"
    "  cert_sha256 BLOB CHECK (cert_sha256 IS NULL OR length(cert_sha256) = 32),"
    "  secret      BLOB NOT NULL CHECK (length(secret) = 72),"
    "  revoked     INTEGER NOT NULL CHECK (revoked IN (0, 1)),"
    "  created_at  INTEGER NOT NULL,"
    "  rotated_at  INTEGER NOT NULL,"
    "  revoked_at  INTEGER NOT NULL"
    ");",
    "CREATE TABLE client_segments ("
    "  client_id  INTEGER NOT NULL REFERENCES clients(id),"
    "  segment_id INTEGER NOT NULL REFERENCES segments(id),"
    "  PRIMARY KEY (client_id, segment_id)"
    ") WITHOUT ROWID;",
    "CREATE TABLE client_purposes ("
    "  client_id  INTEGER NOT NULL REFERENCES clients(id),"
    "  purpose_id INTEGER NOT NULL REFERENCES purposes(id),"
    "  PRIMARY KEY (client_id, purpose_id)"
    ") WITHOUT ROWID;",
    "CREATE TABLE idempotency ("
    "  client_id    INTEGER NOT NULL REFERENCES clients(id),"
    "  key          TEXT NOT NULL CHECK (length(CAST(key AS BLOB)) BETWEEN 1 AND 255),"
    "  request_hash BLOB NOT NULL CHECK (length(request_hash) = 32),"
    "  operation    TEXT NOT NULL CHECK (length(CAST(operation AS BLOB)) BETWEEN 1 AND 31),"
    "  subject_id   BLOB CHECK (subject_id IS NULL OR length(subject_id) = 16),"
    "  template_id  BLOB CHECK (template_id IS NULL OR length(template_id) = 16),"
    "  created_at   INTEGER NOT NULL,"
    "  expires_at   INTEGER NOT NULL,"
    "  PRIMARY KEY (client_id, key)"
    ") WITHOUT ROWID;",
    "CREATE INDEX idempotency_by_expiry ON idempotency(expires_at);",
    NULL,
};

/* Step v takes a file from version v - 1 to v.  Version 0 is an empty file:
 * open() refuses it (an interrupted init), so step 1 only documents the
 * baseline; later steps are ALTER/CREATE statements on top of it.  A new
 * file is created by running every step in one transaction, so "created at
 * N" and "migrated to N" are the same schema by construction. */
const sq_sql_list sq_data_migrations[ABIS_STORE_SCHEMA_VERSION + 1] = {
    [0] = NULL,
    [1] = data_v1,
    [2] = data_v2,
};

const sq_sql_list sq_keys_migrations[SQ_KEYS_SCHEMA_VERSION + 1] = {
    [0] = NULL,
    [1] = keys_v1,
};
