-- OCPP 2.0.1 / 2.1: transaction events, device model, device events, security events and
-- the columns the shared model needs for them. 1.6 data is untouched.

-- Every TransactionEvent received, once: the key (charger, transactionId, seqNo) makes a
-- retried or duplicated event a no-op. Events are applied to `sessions` (same charger and
-- transaction id) in any arrival order; `after_end` marks an event other than Ended that arrived
-- when the session had already ended (kept, but it does not reopen the session).
CREATE TABLE transaction_events (
    charge_point_id   text NOT NULL,
    transaction_id    text NOT NULL,
    seq_no            integer NOT NULL,
    event_type        text NOT NULL CHECK (event_type IN ('Started', 'Updated', 'Ended')),
    trigger_reason    text,
    event_at          timestamptz NOT NULL,
    offline           boolean NOT NULL DEFAULT false,
    evse_id           integer,
    connector_id      integer,            -- the shared connector identity (see csms.versions.v2x)
    id_token          text,
    id_token_type     text,
    charging_state    text,
    stopped_reason    text,
    number_of_phases  smallint,
    reservation_id    integer,
    remote_start_id   integer,
    samples           integer NOT NULL DEFAULT 0,   -- sampled values it carried (in meter_values)
    after_end         boolean NOT NULL DEFAULT false,
    ocpp_version      text NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, transaction_id, seq_no)
);
CREATE INDEX transaction_events_received ON transaction_events USING brin (received_at);

-- Session columns used by 2.x (NULL for 1.6 sessions unless noted).
ALTER TABLE sessions
    ADD COLUMN meter_start_at    timestamptz,      -- time of the reading meter_start_wh came from
    ADD COLUMN id_token_type     text,
    ADD COLUMN number_of_phases  smallint,
    ADD COLUMN remote_start_id   integer,
    ADD COLUMN start_seen        boolean,          -- 2.x: a TransactionEvent(Started) was received
    ADD COLUMN end_seq_no        integer;          -- 2.x: seqNo of the Ended event

-- Faults from 2.x device events name the component and variable that reported the problem.
-- Several problems can be open on one connector at once, one per (source, code, component,
-- variable); for source 'status' the write path still keeps at most one open per connector.
ALTER TABLE faults
    ADD COLUMN component  text,
    ADD COLUMN variable   text;
DROP INDEX faults_one_open;
CREATE UNIQUE INDEX faults_one_open ON faults
    (charge_point_id, connector_id, source, error_code, coalesce(component, ''), coalesce(variable, ''))
    WHERE closed_at IS NULL;

ALTER TABLE connectors ADD COLUMN evse_connector_id integer;   -- 2.x connectorId within the EVSE
ALTER TABLE status_history ADD COLUMN evse_connector_id integer;

-- The device model a 2.x charger reported (NotifyReport), one row per variable attribute.
CREATE TABLE device_variables (
    charge_point_id     text NOT NULL REFERENCES charge_points(id) ON DELETE CASCADE,
    component           text NOT NULL,
    component_instance  text NOT NULL DEFAULT '',
    evse_id             integer NOT NULL DEFAULT -1,   -- -1: not bound to an EVSE
    evse_connector_id   integer NOT NULL DEFAULT -1,
    variable            text NOT NULL,
    variable_instance   text NOT NULL DEFAULT '',
    attribute_type      text NOT NULL DEFAULT 'Actual',
    value               text,
    mutability          text,
    persistent          boolean,
    constant            boolean,
    data_type           text,
    unit                text,
    min_limit           double precision,
    max_limit           double precision,
    values_list         text,
    supports_monitoring boolean,
    request_id          integer,
    reported_at         timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, component, component_instance, evse_id, evse_connector_id, variable,
                 variable_instance, attribute_type)
);

-- Component/variable events (NotifyEvent), kept as they came.
CREATE TABLE device_events (
    id                  bigserial PRIMARY KEY,
    charge_point_id     text NOT NULL,
    event_id            integer NOT NULL,
    event_at            timestamptz NOT NULL,
    generated_at        timestamptz,
    trigger             text NOT NULL,
    notification_type   text,
    component           text NOT NULL,
    component_instance  text,
    evse_id             integer,
    evse_connector_id   integer,
    connector_id        integer NOT NULL,   -- shared connector identity, 0 = the charger
    variable            text NOT NULL,
    variable_instance   text,
    actual_value        text,
    cause               integer,
    tech_code           text,
    tech_info           text,
    cleared             boolean,
    transaction_id      text,
    monitoring_id       integer,
    severity            integer,
    problem             boolean,            -- true opened a fault, false closed one, NULL neither
    received_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (charge_point_id, event_id, event_at)
);
CREATE INDEX device_events_cp ON device_events (charge_point_id, event_at DESC);

-- Security events (SecurityEventNotification, any version) are kept in charger_messages as they
-- came; the alarming ones also open a fault with source 'security' (see csms.events.is_security_alarm).
