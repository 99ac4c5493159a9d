-- The kernel's tables, created in every service's own schema (the search_path puts it first).

-- Events written in the same transaction as the change they describe; the relay publishes them.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    event_type   text NOT NULL,
    envelope     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Events a consumer has applied: a redelivery finds its id here and changes nothing.
CREATE TABLE processed_events (
    consumer     text NOT NULL,
    event_id     uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Deliveries a consumer gave up on, with the reason, for an admin to inspect and retry.
CREATE TABLE dead_letters (
    id         uuid PRIMARY KEY,
    consumer   text NOT NULL,
    event_id   uuid,
    event_type text,
    payload    text NOT NULL,
    reason     text NOT NULL,
    attempts   integer NOT NULL,
    parked_at  timestamptz NOT NULL DEFAULT now(),
    retried_at timestamptz
);
CREATE INDEX dead_letters_waiting ON dead_letters (parked_at) WHERE retried_at IS NULL;
