-- Profiles: what an account shows. The row appears when `user.registered` arrives, or on the
-- account's first request here, whichever comes first.
CREATE TABLE profiles (
    id                 uuid PRIMARY KEY,
    email              text,
    display_name       text,
    invite_redeemed_at timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Deleted accounts, so that a late `user.registered` or a still-valid access token cannot bring
-- a profile back.
CREATE TABLE tombstones (
    id         uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Invite codes, stored as SHA-256 of their normal form: the code is shown once, at creation.
CREATE TABLE invites (
    id         uuid PRIMARY KEY,
    code_hash  bytea NOT NULL UNIQUE,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    max_uses   integer NOT NULL CHECK (max_uses > 0),
    uses_left  integer NOT NULL CHECK (uses_left >= 0)
);

CREATE TABLE redemptions (
    invite_id   uuid NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    redeemed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invite_id, user_id)
);
CREATE INDEX redemptions_user ON redemptions (user_id);
