-- Revoked invites stay listed, marked with when; a revoked code can no longer be redeemed.
ALTER TABLE invites ADD COLUMN revoked_at timestamptz;
