-- Core CSMS model: chargers, connectors, id tags, sessions, meter values, faults, charger messages.
-- All timestamps are timestamptz (UTC). Operating data is kept at least 5 years (city rule,
-- 运营管理办法 第十四条): meter values are partitioned by month so that old months can be
-- dropped or archived without scanning.

CREATE TABLE charge_points (
    id                      text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    password_hash           text,
    security_profile        smallint NOT NULL DEFAULT 1 CHECK (security_profile BETWEEN 0 AND 3),
    ocpp_version            text,
    vendor                  text,
    model                   text,
    serial_number           text,
    charge_box_serial_number text,
    firmware_version        text,
    iccid                   text,
    imsi                    text,
    meter_type              text,
    meter_serial_number     text,
    boot_reason             text,
    registration_status     text NOT NULL DEFAULT 'Accepted',
    registered_at           timestamptz NOT NULL DEFAULT now(),
    boot_at                 timestamptz,
    node_id                 text,          -- the CSMS node holding the connection
    lease_expires_at        timestamptz,   -- the connection counts as online until then
    connected_since         timestamptz,
    last_seen               timestamptz,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE charger_connections (
    id               bigserial PRIMARY KEY,
    charge_point_id  text NOT NULL REFERENCES charge_points(id) ON DELETE CASCADE,
    node_id          text NOT NULL,
    ocpp_version     text NOT NULL,
    remote_address   text,
    connected_at     timestamptz NOT NULL,
    disconnected_at  timestamptz,
    close_code       integer
);
CREATE INDEX charger_connections_cp ON charger_connections (charge_point_id, connected_at DESC);

CREATE TABLE connectors (
    charge_point_id   text NOT NULL REFERENCES charge_points(id) ON DELETE CASCADE,
    connector_id      integer NOT NULL CHECK (connector_id >= 0),
    evse_id           integer,
    status            text NOT NULL,
    error_code        text NOT NULL DEFAULT 'NoError',
    info              text,
    vendor_id         text,
    vendor_error_code text,
    status_at         timestamptz NOT NULL,   -- the charger's own timestamp of this status
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, connector_id)
);

CREATE TABLE status_history (
    id                bigserial PRIMARY KEY,
    charge_point_id   text NOT NULL,
    connector_id      integer NOT NULL,
    evse_id           integer,
    status            text NOT NULL,
    error_code        text NOT NULL,
    info              text,
    vendor_id         text,
    vendor_error_code text,
    status_at         timestamptz NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_history_cp_time ON status_history (charge_point_id, connector_id, status_at);
CREATE INDEX status_history_time ON status_history USING brin (status_at);

CREATE TABLE id_tags (
    id_tag         text PRIMARY KEY CHECK (length(id_tag) BETWEEN 1 AND 36),
    status         text NOT NULL DEFAULT 'Accepted'
                   CHECK (status IN ('Accepted', 'Blocked', 'Expired', 'Invalid')),
    expiry_date    timestamptz,
    parent_id_tag  text,
    max_active_transactions integer NOT NULL DEFAULT 1,
    note           text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- One row per charging session, for every OCPP version. transaction_id is the id as the
-- charger knows it: for 1.6 the integer we assigned (= id), for 2.x the charger's string.
CREATE TABLE sessions (
    id                bigserial PRIMARY KEY,
    charge_point_id   text NOT NULL,
    transaction_id    text NOT NULL,
    ocpp_version      text NOT NULL,
    connector_id      integer,
    evse_id           integer,
    id_tag            text,
    id_tag_status     text,
    reservation_id    integer,
    started_at        timestamptz,
    stopped_at        timestamptz,
    meter_start_wh    double precision,
    meter_stop_wh     double precision,
    energy_wh         double precision,
    stop_reason       text,
    stop_id_tag       text,
    last_seq_no       integer,
    charging_state    text,
    -- 'start_missing': a stop for a transaction we never saw started (recorded, not dropped)
    anomaly           text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (charge_point_id, transaction_id)
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_cp_started ON sessions (charge_point_id, started_at DESC);
CREATE INDEX sessions_open ON sessions (charge_point_id, connector_id) WHERE stopped_at IS NULL;
CREATE INDEX sessions_open_by_tag ON sessions (id_tag) WHERE stopped_at IS NULL;
-- Idempotency of a 1.6 StartTransaction repeated after a reconnect.
CREATE UNIQUE INDEX sessions_start_key ON sessions
    (charge_point_id, connector_id, id_tag, started_at, meter_start_wh) WHERE ocpp_version = '1.6';

CREATE TABLE meter_values (
    charge_point_id  text NOT NULL,
    connector_id     integer NOT NULL,
    session_id       bigint,
    transaction_id   text,
    sampled_at       timestamptz NOT NULL,
    measurand        text NOT NULL,
    phase            text,
    unit             text,
    context          text,
    location         text,
    value            double precision,
    raw_value        text,
    received_at      timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (sampled_at);
CREATE TABLE meter_values_default PARTITION OF meter_values DEFAULT;
CREATE INDEX meter_values_session ON meter_values (session_id, sampled_at) ;
CREATE INDEX meter_values_cp_time ON meter_values (charge_point_id, sampled_at);

CREATE TABLE faults (
    id                bigserial PRIMARY KEY,
    charge_point_id   text NOT NULL,
    connector_id      integer NOT NULL,
    source            text NOT NULL DEFAULT 'status',  -- status | event | security
    error_code        text NOT NULL,
    vendor_id         text,
    vendor_error_code text,
    info              text,
    opened_at         timestamptz NOT NULL,
    closed_at         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX faults_cp ON faults (charge_point_id, connector_id, opened_at DESC);
CREATE UNIQUE INDEX faults_one_open ON faults (charge_point_id, connector_id, source)
    WHERE closed_at IS NULL;
CREATE INDEX faults_opened ON faults (opened_at);

-- Charger messages kept as they came: DataTransfer, firmware/diagnostics/log status, security events...
CREATE TABLE charger_messages (
    id               bigserial PRIMARY KEY,
    charge_point_id  text NOT NULL,
    action           text NOT NULL,
    payload          jsonb NOT NULL,
    charger_time     timestamptz,
    received_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX charger_messages_cp ON charger_messages (charge_point_id, action, received_at DESC);

-- Creates the monthly partition of meter_values holding `month` (any timestamp in it), moving
-- rows that the default partition caught for that month. Safe to call repeatedly.
CREATE FUNCTION ensure_meter_values_partition(month timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := date_trunc('month', month AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi timestamptz := lo + interval '1 month';
    name text := 'meter_values_' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE meter_values INCLUDING DEFAULTS)', name);
    EXECUTE format('WITH moved AS (DELETE FROM meter_values_default WHERE sampled_at >= %L AND sampled_at < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', lo, hi, name);
    EXECUTE format('ALTER TABLE meter_values ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    RETURN name;
END $$;

-- Partitions from 2022 (the plan's base year) to a year ahead; `csms db maintain` keeps creating ahead.
SELECT ensure_meter_values_partition(m)
FROM generate_series(timestamptz '2022-01-01 00:00+00',
                     date_trunc('month', now()) + interval '12 months', interval '1 month') AS m;
