-- Career documents: one row per upload, the original kept in object storage at `blob_key`.
-- `version` grows with every re-index; `content.status_changed` events of an older version are
-- ignored, so a slow first ingestion cannot overwrite the outcome of a newer one.
CREATE TABLE documents (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    title       text NOT NULL,
    filename    text NOT NULL,
    media_type  text NOT NULL,
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    sha256      text NOT NULL,
    blob_key    text NOT NULL,
    version     bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    status      text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'extracting', 'indexing', 'ready', 'failed')),
    reason      text,
    chunk_count bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX documents_by_owner ON documents (owner_id, created_at DESC);

-- The order of a version's ingestion steps; `ready` and `failed` both end it.
CREATE FUNCTION document_step(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE status WHEN 'queued' THEN 0 WHEN 'extracting' THEN 1
                             WHEN 'indexing' THEN 2 ELSE 3 END $$;
