-- Corrections an owner wrote for a question their chatbot answered badly: each is indexed like
-- a one-chunk document of kind 'correction', and its chunk is pinned, so that retrieval puts it
-- before any document passage when a similar question comes again.
ALTER TABLE documents ADD COLUMN kind text NOT NULL DEFAULT 'document'
    CHECK (kind IN ('document', 'correction'));
ALTER TABLE chunks ADD COLUMN pinned boolean NOT NULL DEFAULT false;
CREATE INDEX documents_by_owner ON documents (owner_id);
