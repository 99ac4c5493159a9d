-- Who may be written to: filled from user.registered, emptied by user.deleted. Nothing else in
-- noti knows an account's address, so an account deleted is an account no longer mailed.
CREATE TABLE recipients (
    user_id      uuid PRIMARY KEY,
    email        text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    locale       text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The delivery ledger (see src/ledger.rs): one row per event (or digest), channel, recipient.
CREATE TABLE deliveries (
    id         uuid NOT NULL,
    channel    text NOT NULL,
    recipient  text NOT NULL,
    state      text NOT NULL CHECK (state IN ('sending', 'sent', 'failed', 'unknown')),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    PRIMARY KEY (id, channel, recipient)
);

-- How a chatbot owner wants to hear about questions. No row: instantly, by e-mail.
CREATE TABLE owner_settings (
    owner_id            uuid PRIMARY KEY,
    mode                text NOT NULL CHECK (mode IN ('instant', 'digest', 'off')),
    email               boolean NOT NULL,
    discord_webhook_url text,
    locale              text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Questions waiting for their owner's digest; `digest_id` is set when a digest takes them.
CREATE TABLE pending_questions (
    event_id     uuid PRIMARY KEY,
    owner_id     uuid NOT NULL,
    chatbot_slug text NOT NULL,
    question     text NOT NULL,
    asker_role   text NOT NULL,
    asked_at     timestamptz NOT NULL,
    digest_id    uuid
);
CREATE INDEX pending_questions_waiting ON pending_questions (owner_id, asked_at) WHERE digest_id IS NULL;

CREATE TABLE digests (
    id         uuid PRIMARY KEY,
    owner_id   uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX digests_unsent ON digests (created_at) WHERE sent_at IS NULL;
