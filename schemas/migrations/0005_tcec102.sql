-- Issue 6: time-of-use tariffs with per-session cost, and the T/CEC 102 supervision-platform
-- link (counterparts, tokens we issued, the durable outbox, disputed charge orders).
-- Depends on 0003_registry (stations, piles) and 0004_api (charge_points.station_id).

-- ------------------------------------------------------------------ tariffs
-- A tariff is a named time-of-use schedule; each version is valid from a local (Beijing) date
-- and lists its periods. Versions are never changed or deleted, so a session can always be
-- (re)priced with the version in force when it ran.
CREATE TABLE tariffs (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tariff_versions (
    id          bigserial PRIMARY KEY,
    tariff_id   bigint NOT NULL REFERENCES tariffs (id) ON DELETE RESTRICT,
    valid_from  date NOT NULL,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tariff_id, valid_from)
);

CREATE TABLE tariff_periods (
    version_id     bigint NOT NULL REFERENCES tariff_versions (id) ON DELETE CASCADE,
    start_time     time NOT NULL,                       -- local wall-clock start
    elec_price     numeric(12, 4) NOT NULL CHECK (elec_price >= 0),     -- yuan/kWh
    service_price  numeric(12, 4) NOT NULL CHECK (service_price >= 0),  -- yuan/kWh
    PRIMARY KEY (version_id, start_time)
);

-- Which tariff a station uses from when on (station_id NULL = the operator's default). Rows are
-- only added: the assignment in force for a session is the latest valid_from <= its start.
CREATE TABLE tariff_assignments (
    id          bigserial PRIMARY KEY,
    station_id  text,
    tariff_id   bigint NOT NULL REFERENCES tariffs (id) ON DELETE RESTRICT,
    valid_from  timestamptz NOT NULL DEFAULT now(),
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tariff_assignments_station ON tariff_assignments (station_id, valid_from DESC);

-- The priced session (one row per ended session). `details` are the T/CEC ChargeDetails as
-- computed by csms.tariffs.price_session; `error` says why a session could not be priced.
CREATE TABLE session_costs (
    session_id           bigint PRIMARY KEY,
    tariff_id            bigint,
    tariff_version_id    bigint,
    station_id           text,
    total_power          numeric(14, 3),     -- kWh
    total_elec_money     numeric(14, 2),     -- yuan
    total_service_money  numeric(14, 2),
    total_money          numeric(14, 2),
    details              jsonb NOT NULL DEFAULT '[]',
    error                text,
    priced_at            timestamptz NOT NULL DEFAULT now()
);

-- ------------------------------------------------------------------ platforms
-- A supervision platform (counterpart). `secrets` is the encrypted JSON of OperatorSecret,
-- DataSecret, DataSecretIV and SigSecret (csms.secretbox; never stored or logged in clear).
CREATE TABLE tcec_platforms (
    id               serial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    operator_id      text NOT NULL UNIQUE CHECK (length(operator_id) BETWEEN 1 AND 32),  -- theirs
    our_operator_id  text NOT NULL CHECK (our_operator_id ~ '^[A-Za-z0-9]{9}$'),
    base_url         text NOT NULL,
    version          text NOT NULL DEFAULT '20160701',
    interfaces       text[] NOT NULL,
    secrets          bytea NOT NULL,
    enabled          boolean NOT NULL DEFAULT true,
    service_tel      text NOT NULL DEFAULT '',   -- our ServiceTel in StationInfo
    -- delivery state, written by the sender
    halted_at        timestamptz,          -- set on Ret 4001 (our secrets are wrong): no sending
    last_success_at  timestamptz,
    last_error       text,
    last_error_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Tokens we issued with query_token (only a SHA-256 is kept).
CREATE TABLE tcec_tokens (
    token_hash   text PRIMARY KEY,
    platform_id  integer NOT NULL REFERENCES tcec_platforms (id) ON DELETE CASCADE,
    issued_at    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX tcec_tokens_expiry ON tcec_tokens (expires_at);

-- ------------------------------------------------------------------ outbox
-- Per (platform, ordering key) the last sequence number handed out. The upsert that takes a
-- number also row-locks the key until commit, so numbers commit in order within a key.
CREATE TABLE tcec_outbox_keys (
    platform_id  integer NOT NULL REFERENCES tcec_platforms (id) ON DELETE CASCADE,
    order_key    text NOT NULL,
    last_seq     bigint NOT NULL,
    PRIMARY KEY (platform_id, order_key)
);

-- Every notification for a platform, written in the transaction of the event that caused it.
-- Delivered in seq order per (platform, order_key). stamp_ts/stamp_seq are the envelope's
-- TimeStamp/Seq, fixed before the first attempt and reused on every resend, so a platform can
-- deduplicate a message it may have received before a crash.
CREATE TABLE tcec_outbox (
    id                bigserial PRIMARY KEY,
    platform_id       integer NOT NULL REFERENCES tcec_platforms (id) ON DELETE CASCADE,
    interface         text NOT NULL,
    order_key         text NOT NULL,
    seq               bigint NOT NULL,
    payload           text NOT NULL,          -- the interface's JSON (plaintext of Data)
    session_id        bigint,
    start_charge_seq  text,
    state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'rejected')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    stamp_ts          text,
    stamp_seq         text,
    last_attempt_at   timestamptz,
    last_error        text,
    response          text,                   -- decrypted Data of the acknowledgement
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (platform_id, order_key, seq)
);
CREATE INDEX tcec_outbox_pending ON tcec_outbox (platform_id, order_key, seq) WHERE state = 'pending';
CREATE INDEX tcec_outbox_rejected ON tcec_outbox (platform_id) WHERE state = 'rejected';
CREATE INDEX tcec_outbox_session ON tcec_outbox (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX tcec_outbox_created ON tcec_outbox USING brin (created_at);

-- The T/CEC connector status last enqueued per platform (deduplicates, and lets the
-- reconciler find connectors whose state changed without a StatusNotification: offline).
CREATE TABLE tcec_connector_pushed (
    platform_id      integer NOT NULL REFERENCES tcec_platforms (id) ON DELETE CASCADE,
    charge_point_id  text NOT NULL,
    connector_id     integer NOT NULL,
    status           smallint NOT NULL,
    at               timestamptz NOT NULL,
    PRIMARY KEY (platform_id, charge_point_id, connector_id)
);

-- Registry changes: a trigger bumps a station's version in the transaction that changed it;
-- the scheduler pushes notification_stationInfo for stations whose version a platform lacks.
CREATE SEQUENCE tcec_station_version_seq;
CREATE TABLE tcec_station_changes (
    station_id  text PRIMARY KEY,
    version     bigint NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tcec_station_pushed (
    platform_id  integer NOT NULL REFERENCES tcec_platforms (id) ON DELETE CASCADE,
    station_id   text NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (platform_id, station_id)
);

-- Charge orders sent, per platform, with the platform's answer. confirm_result 1 = disputed:
-- flagged for the operator until resolved.
CREATE TABLE tcec_charge_orders (
    platform_id       integer NOT NULL REFERENCES tcec_platforms (id) ON DELETE CASCADE,
    session_id        bigint NOT NULL,
    start_charge_seq  text NOT NULL,
    outbox_id         bigint,
    confirm_result    smallint,
    confirmed_at      timestamptz,
    resolved_at       timestamptz,
    resolved_note     text,
    PRIMARY KEY (platform_id, session_id),
    UNIQUE (platform_id, start_charge_seq)
);
CREATE INDEX tcec_charge_orders_disputed ON tcec_charge_orders (platform_id)
    WHERE confirm_result = 1 AND resolved_at IS NULL;

-- Last notification_equip_charge_status per running session (any platform).
CREATE TABLE tcec_session_pushes (
    session_id  bigint PRIMARY KEY,
    last_at     timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION tcec_station_changed(sid text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO tcec_station_changes (station_id, version, changed_at)
    SELECT sid, nextval('tcec_station_version_seq'), now() WHERE sid IS NOT NULL
    ON CONFLICT (station_id) DO UPDATE SET version = EXCLUDED.version, changed_at = EXCLUDED.changed_at;
$$;

CREATE OR REPLACE FUNCTION tcec_registry_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM tcec_station_changed(OLD.station_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF TG_OP = 'INSERT' OR NEW.station_id IS DISTINCT FROM OLD.station_id THEN
            PERFORM tcec_station_changed(NEW.station_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER stations_tcec AFTER INSERT OR DELETE ON stations
    FOR EACH ROW EXECUTE FUNCTION tcec_registry_trigger();
CREATE TRIGGER stations_tcec_update AFTER UPDATE ON stations
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION tcec_registry_trigger();
CREATE TRIGGER piles_tcec AFTER INSERT OR DELETE ON piles
    FOR EACH ROW EXECUTE FUNCTION tcec_registry_trigger();
CREATE TRIGGER piles_tcec_update AFTER UPDATE ON piles
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION tcec_registry_trigger();
CREATE TRIGGER charge_points_tcec_station AFTER UPDATE OF station_id ON charge_points
    FOR EACH ROW WHEN (OLD.station_id IS DISTINCT FROM NEW.station_id) EXECUTE FUNCTION tcec_registry_trigger();
