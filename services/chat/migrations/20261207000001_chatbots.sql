-- Chatbots, the questions recruiters ask them, and what the product rules count.
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;

-- Display names as the user service announced them (`user.registered`), so that a chatbot can
-- name its owner without asking another service's tables.
CREATE TABLE people (
    user_id      uuid PRIMARY KEY,
    display_name text NOT NULL
);

-- One chatbot per protostar.
CREATE TABLE chatbots (
    id              uuid PRIMARY KEY,
    owner_id        uuid NOT NULL UNIQUE,
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$'),
    name            text NOT NULL,
    greeting        text NOT NULL,
    persona         text NOT NULL DEFAULT '',
    voice           text NOT NULL DEFAULT 'third_person'
                    CHECK (voice IN ('first_person', 'third_person')),
    allowed_origins text[] NOT NULL DEFAULT '{}',
    accent          text NOT NULL DEFAULT '#4f46e5',
    talent_search   boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- An asker's thread with one chatbot. `asker_id` is the access token's subject: an account id,
-- or a guest's own subject.
CREATE TABLE conversations (
    id            uuid PRIMARY KEY,
    chatbot_id    uuid NOT NULL REFERENCES chatbots ON DELETE CASCADE,
    asker_id      text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_asked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_by_asker ON conversations (asker_id, last_asked_at DESC);

-- One question and its answer. `support` is the best passage's similarity to the question;
-- `question_embedding` feeds the owner's question clusters.
CREATE TABLE answers (
    id                 uuid PRIMARY KEY,
    conversation_id    uuid NOT NULL REFERENCES conversations ON DELETE CASCADE,
    chatbot_id         uuid NOT NULL REFERENCES chatbots ON DELETE CASCADE,
    asker_id           text NOT NULL,
    asker_role         text NOT NULL,
    question           text NOT NULL,
    answer             text NOT NULL,
    supported          boolean NOT NULL,
    support            double precision NOT NULL DEFAULT 0,
    model              text NOT NULL,
    citations          jsonb NOT NULL DEFAULT '[]',
    question_embedding vector(384),
    asked_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX answers_by_chatbot ON answers (chatbot_id, asked_at DESC);
CREATE INDEX answers_by_conversation ON answers (conversation_id, asked_at);

CREATE TABLE feedback (
    answer_id  uuid PRIMARY KEY REFERENCES answers ON DELETE CASCADE,
    rating     text NOT NULL CHECK (rating IN ('up', 'down')),
    comment    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The right answer, written by the chatbot's owner; ai indexes it as a pinned passage.
CREATE TABLE corrections (
    id         uuid PRIMARY KEY,
    chatbot_id uuid NOT NULL REFERENCES chatbots ON DELETE CASCADE,
    answer_id  uuid REFERENCES answers ON DELETE SET NULL,
    question   text NOT NULL,
    answer     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corrections_by_answer ON corrections (answer_id);

-- Quota counters: `scope` is what is counted (`subject:…`, `ip:…`, `chatbot:…`), `period`
-- the window (`total`, or a day in the configured time zone). Reserving increments only below
-- the limit, under the row's lock, so racing requests can never pass it.
CREATE TABLE quota_counters (
    scope  text NOT NULL,
    period text NOT NULL,
    used   integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (scope, period)
);
