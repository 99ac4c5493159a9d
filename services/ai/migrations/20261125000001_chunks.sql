-- The AI service's index: one row per document it has seen (its newest version and where its
-- ingestion stands), and that version's chunks with their embeddings and keyword tokens.
-- Chunks, vectors and the document's state change together in one transaction.
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

CREATE TABLE documents (
    document_id uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    version     bigint NOT NULL,
    title       text NOT NULL,
    status      text NOT NULL
                CHECK (status IN ('extracting', 'indexing', 'ready', 'failed', 'deleted')),
    reason      text,
    chunk_count bigint,
    embedder    text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chunks (
    id          uuid PRIMARY KEY,
    document_id uuid NOT NULL REFERENCES documents ON DELETE CASCADE,
    owner_id    uuid NOT NULL,
    version     bigint NOT NULL,
    ordinal     integer NOT NULL,
    location    text NOT NULL,
    page        integer,
    text        text NOT NULL,
    -- Locale-independent keyword tokens (Latin words, Hangul/CJK character bigrams), built in
    -- Rust and stored with array_to_tsvector so no text-search parser or dictionary is involved.
    keywords    tsvector NOT NULL,
    embedding   vector(384) NOT NULL,
    UNIQUE (document_id, version, ordinal)
);

CREATE INDEX chunks_by_owner ON chunks (owner_id);
CREATE INDEX chunks_keywords ON chunks USING gin (keywords);
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops);
