-- Evidence (证据): photos, video and documents of an inspection (later of a case). The bytes are in the evidence
-- store, content-addressed by their SHA-256 (identical bytes are kept once); a row exists only once its blob is
-- stored, and is never changed.
CREATE TABLE evidence (
    id              TEXT PRIMARY KEY,
    inspection_id   TEXT REFERENCES inspections (id),
    case_id         TEXT REFERENCES cases (id),
    filename        TEXT NOT NULL,
    -- Decided from the file's leading bytes.
    content_type    TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL CHECK (size_bytes > 0),
    sha256          TEXT NOT NULL,
    uploaded_at     TIMESTAMP NOT NULL,
    -- Who uploaded it: as people read it, and the identity the own-records rule compares.
    uploaded_by     TEXT NOT NULL,
    uploader_id     TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    version         BIGINT NOT NULL,
    CHECK ((inspection_id IS NULL) <> (case_id IS NULL))
);
CREATE INDEX evidence_inspection ON evidence (inspection_id, id);
CREATE INDEX evidence_case ON evidence (case_id, id);
CREATE INDEX evidence_sha256 ON evidence (sha256);
