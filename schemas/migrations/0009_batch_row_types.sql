-- The group committer (csms.group_commit) writes the append-only rows of a whole batch (meter
-- values, and the transaction events of the 2.x light path) with one INSERT ... SELECT FROM
-- unnest($n::<row type>[]) statement: one round trip, and, for a batch of nothing but such rows,
-- no BEGIN/COMMIT around it. These are the row types; their fields are named and ordered like
-- csms.group_commit.METER_COLUMNS and TRANSACTION_EVENT_COLUMNS (a test checks it).
-- They replace the composite type of 0008, which only the light path's events used.
DROP TYPE IF EXISTS light_transaction_event;

CREATE TYPE meter_value_row AS (
    charge_point_id  text,
    connector_id     integer,
    session_id       bigint,
    transaction_id   text,
    sampled_at       timestamptz,
    measurand        text,
    phase            text,
    unit             text,
    context          text,
    location         text,
    value            double precision,
    raw_value        text
);

CREATE TYPE transaction_event_row AS (
    charge_point_id  text,
    transaction_id   text,
    seq_no           integer,
    event_type       text,
    trigger_reason   text,
    event_at         timestamptz,
    offline          boolean,
    evse_id          integer,
    connector_id     integer,
    charging_state   text,
    samples          integer,
    ocpp_version     text
);
