-- Operator API: bearer tokens, the command audit log, multi-node routing, station assignment.

-- API tokens. Only a SHA-256 of the token is stored (tokens are 256-bit random strings, so a
-- fast hash is enough); `prefix` (the first characters) lets an operator tell tokens apart.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('admin', 'operator', 'bureau')),
    token_hash    text NOT NULL UNIQUE,
    prefix        text NOT NULL,
    created_by    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
-- A name identifies one active token (revoke by name); revoked names may be reused.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Every CSMS→charger command, written before it is sent (outcome 'pending') and completed with
-- the charger's answer or the error. A node that dies mid-command leaves the row 'pending'.
CREATE TABLE command_log (
    id               bigserial PRIMARY KEY,
    charge_point_id  text NOT NULL,
    command          text NOT NULL,          -- the API command, e.g. 'reset'
    action           text,                   -- the OCPP action sent, e.g. 'Reset'
    ocpp_version     text,
    request          jsonb NOT NULL,         -- the API request body
    payload          jsonb,                  -- the OCPP payload sent
    response         jsonb,                  -- the charger's CALLRESULT payload
    outcome          text NOT NULL DEFAULT 'pending'
                     CHECK (outcome IN ('pending', 'answered', 'call_error', 'timeout', 'offline', 'failed')),
    error            text,
    token_id         bigint,
    token_name       text,
    api_node_id      text NOT NULL,          -- the node that took the API request
    charger_node_id  text,                   -- the node holding the charger's connection
    requested_at     timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    duration_ms      double precision
);
CREATE INDEX command_log_cp ON command_log (charge_point_id, requested_at DESC);
CREATE INDEX command_log_time ON command_log (requested_at DESC);

-- Node-to-node messages too large for a NOTIFY payload (8000 bytes): the body is stored here
-- and only its id is notified; the receiver deletes the row when it reads it.
CREATE UNLOGGED TABLE routing_messages (
    id          uuid PRIMARY KEY,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Station assignment (the stations table comes with the registry; no foreign key so that either
-- migration may come first).
ALTER TABLE charge_points ADD COLUMN station_id text;
CREATE INDEX charge_points_station ON charge_points (station_id);
