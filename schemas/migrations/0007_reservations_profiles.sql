-- Reservations and the charging profiles library (operator API: /reservations, /charging-profiles).

-- A reservation made through the API. `id` is the OCPP reservationId sent in ReserveNow (int32).
-- status: Requested (sent, no answer yet), the charger's ReserveNow answer (Accepted, Rejected, Faulted,
-- Occupied, Unavailable), then Cancelled (CancelReservation accepted), Used (a transaction started on
-- it), Expired / Removed (a 2.x ReservationStatusUpdate).
CREATE SEQUENCE reservations_id_seq AS integer MINVALUE 1 MAXVALUE 2147483647;
CREATE TABLE reservations (
    id                  integer PRIMARY KEY DEFAULT nextval('reservations_id_seq'),
    charge_point_id     text NOT NULL,
    connector_id        integer NOT NULL DEFAULT 0,   -- 1.6 connector (0 = any); 2.x EVSE
    evse_id             integer,
    id_tag              text NOT NULL,
    expiry_date         timestamptz NOT NULL,
    status              text NOT NULL DEFAULT 'Requested'
                        CHECK (status IN ('Requested', 'Accepted', 'Rejected', 'Faulted', 'Occupied', 'Unavailable',
                                          'Cancelled', 'Used', 'Expired', 'Removed')),
    created_by          text,                         -- the API token's name
    command_id          bigint,                       -- command_log row of the ReserveNow
    cancel_command_id   bigint,                       -- command_log row of the CancelReservation
    session_id          bigint,                       -- the session that used it
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE reservations_id_seq OWNED BY reservations.id;
CREATE INDEX reservations_cp ON reservations (charge_point_id, created_at DESC);
CREATE INDEX reservations_status ON reservations (status, expiry_date);

-- Charging profiles kept in the CSMS, applied to chargers with SetChargingProfile. `id` is also the
-- chargingProfileId sent. `schedule` is the OCPP ChargingSchedule: {chargingRateUnit, periods:
-- [{startPeriod, limit, numberPhases}], duration, startSchedule, minChargingRate}.
CREATE TABLE charging_profiles (
    id            serial PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    description   text,
    purpose       text NOT NULL CHECK (purpose IN ('TxDefaultProfile', 'TxProfile', 'ChargePointMaxProfile')),
    stack_level   integer NOT NULL DEFAULT 0 CHECK (stack_level >= 0),
    kind          text NOT NULL CHECK (kind IN ('Absolute', 'Recurring', 'Relative')),
    recurrency    text CHECK (recurrency IN ('Daily', 'Weekly')),
    valid_from    timestamptz,
    valid_to      timestamptz,
    schedule      jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Each SetChargingProfile of a library profile to a charger, with the charger's answer; cleared_at is
-- set when a ClearChargingProfile of it was accepted.
CREATE TABLE charging_profile_assignments (
    id               bigserial PRIMARY KEY,
    profile_id       integer NOT NULL REFERENCES charging_profiles (id) ON DELETE CASCADE,
    charge_point_id  text NOT NULL,
    connector_id     integer NOT NULL DEFAULT 0,      -- 1.6 connector / 2.x EVSE (0 = the whole charger)
    command_id       bigint,
    status           text NOT NULL,                   -- the charger's answer (Accepted, Rejected, NotSupported)
    assigned_at      timestamptz NOT NULL DEFAULT now(),
    cleared_at       timestamptz,
    clear_command_id bigint
);
CREATE INDEX charging_profile_assignments_profile ON charging_profile_assignments (profile_id, assigned_at DESC);
CREATE INDEX charging_profile_assignments_cp ON charging_profile_assignments (charge_point_id);
