-- Regulator reporting (issue 5): what the DB layer of reporting/ needs beyond 0003_registry.
--
-- * `synthetic` marks demo rows (`csms demo seed`): reports carry a data-quality note while any
--   synthetic row is present, and `csms demo clear` removes exactly these rows.
-- * registry_imports: one row per registry import (CLI or API), for the audit trail.
-- * indexes for the per-pile monthly OCPP aggregates (reporting/store.py): faults closed in a
--   month; sessions by start time already have sessions_started (0001).

ALTER TABLE stations     ADD COLUMN IF NOT EXISTS synthetic boolean NOT NULL DEFAULT false;
ALTER TABLE piles        ADD COLUMN IF NOT EXISTS synthetic boolean NOT NULL DEFAULT false;
ALTER TABLE places       ADD COLUMN IF NOT EXISTS synthetic boolean NOT NULL DEFAULT false;
ALTER TABLE ev_counts    ADD COLUMN IF NOT EXISTS synthetic boolean NOT NULL DEFAULT false;
ALTER TABLE fleet_counts ADD COLUMN IF NOT EXISTS synthetic boolean NOT NULL DEFAULT false;

CREATE INDEX IF NOT EXISTS stations_synthetic ON stations (station_id) WHERE synthetic;
CREATE INDEX IF NOT EXISTS places_synthetic ON places (code) WHERE synthetic;

CREATE TABLE IF NOT EXISTS registry_imports (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('piles', 'vehicles', 'places')),
    filename     text,
    sha256       text NOT NULL,
    rows         integer NOT NULL,
    inserted     integer NOT NULL,
    updated      integer NOT NULL,
    unchanged    integer NOT NULL,
    warnings     integer NOT NULL DEFAULT 0,
    imported_by  text,                        -- 'cli' or the API token's name
    imported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS registry_imports_time ON registry_imports (imported_at DESC);

CREATE INDEX IF NOT EXISTS faults_closed ON faults (closed_at) WHERE closed_at IS NOT NULL;
