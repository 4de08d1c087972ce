-- Registry for regulator reporting (issue 5): stations, piles, places, EV and fleet counts.
-- Columns match the DataFrame contracts of reporting/contracts.py; the CHECK lists match
-- reporting/vocabulary.py (keep them in step). `county` is the plan's planning-unit code
-- (e.g. '140302', or 'gaoxin' for 高新区), not validated here so that another city's units fit.
-- Idempotent: IF NOT EXISTS / OR REPLACE throughout. No foreign key to charge_points (0001):
-- piles.charge_point_id is matched by value.

-- updated_at moves only when a row really changes, so re-importing the same file (an upsert
-- that writes identical values) leaves updated_at as it was.
CREATE OR REPLACE FUNCTION registry_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := OLD.updated_at;
    NEW.created_at := OLD.created_at;
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

-- Places the plan counts: the reference townships / villages / communities (seeded from
-- reporting/data) and imported scenic spots, road facilities, residential communities.
CREATE TABLE IF NOT EXISTS places (
    code              text PRIMARY KEY CHECK (length(code) BETWEEN 1 AND 64),
    kind              text NOT NULL CHECK (kind IN (
                          'township', 'village', 'community', 'scenic_spot', 'highway_service_area',
                          'road_service_area', 'road_parking_area', 'taihang_station', 'taihang_rv_camp',
                          'taihang_parking', 'residential_community')),
    name              text,
    county            text NOT NULL,
    township_code     text,
    lon               double precision CHECK (lon BETWEEN -180 AND 180),
    lat               double precision CHECK (lat BETWEEN -90 AND 90),
    a_level           smallint CHECK (a_level BETWEEN 0 AND 5),
    provincial_resort boolean NOT NULL DEFAULT false,
    parking_spaces    integer CHECK (parking_spaces >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT places_lon_lat_together CHECK ((lon IS NULL) = (lat IS NULL))
);
CREATE INDEX IF NOT EXISTS places_kind_county ON places (kind, county);
CREATE INDEX IF NOT EXISTS places_township ON places (township_code);

CREATE TABLE IF NOT EXISTS stations (
    station_id      text PRIMARY KEY CHECK (length(station_id) BETWEEN 1 AND 64),
    name            text,
    operator        text,
    county          text NOT NULL,
    township_code   text,
    village_code    text,
    address         text,
    lon             double precision CHECK (lon BETWEEN -180 AND 180),   -- WGS-84
    lat             double precision CHECK (lat BETWEEN -90 AND 90),
    access          text NOT NULL CHECK (access IN ('public', 'dedicated', 'private')),  -- 公用/专用/自用
    site_type       text NOT NULL CHECK (site_type IN (
                        'public_parking', 'commercial_parking', 'transport_hub', 'park_and_ride', 'residential',
                        'institution', 'depot_bus', 'depot_taxi', 'depot_sanitation', 'depot_logistics',
                        'scenic_spot', 'highway_service_area', 'road_service_area', 'taihang_station', 'rv_camp',
                        'taihang_parking', 'road_parking', 'township_office', 'village_square', 'fuel_station',
                        'other')),
    parking_spaces  integer CHECK (parking_spaces >= 0),
    centralized     boolean NOT NULL DEFAULT false,                       -- 集中式经营性充电站
    place_code      text,                                                 -- a place the station serves
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stations_lon_lat_together CHECK ((lon IS NULL) = (lat IS NULL))
);
CREATE INDEX IF NOT EXISTS stations_county ON stations (county);
CREATE INDEX IF NOT EXISTS stations_township ON stations (township_code);
CREATE INDEX IF NOT EXISTS stations_village ON stations (village_code) WHERE village_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS stations_place ON stations (place_code) WHERE place_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS stations_updated ON stations (updated_at);

CREATE TABLE IF NOT EXISTS piles (
    pile_id            text PRIMARY KEY CHECK (length(pile_id) BETWEEN 1 AND 64),
    station_id         text NOT NULL REFERENCES stations (station_id) ON UPDATE CASCADE ON DELETE RESTRICT,
    power_kw           double precision NOT NULL CHECK (power_kw > 0),
    current_type       text NOT NULL CHECK (current_type IN ('AC', 'DC')),
    connector_count    smallint NOT NULL DEFAULT 1 CHECK (connector_count >= 1),
    commissioned_on    date NOT NULL,
    decommissioned_on  date,                                              -- NULL = in service
    charge_point_id    text UNIQUE,                                       -- OCPP id when ours (no FK)
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT piles_decommissioned_after_commissioned
        CHECK (decommissioned_on IS NULL OR decommissioned_on >= commissioned_on)
);
CREATE INDEX IF NOT EXISTS piles_station ON piles (station_id);
CREATE INDEX IF NOT EXISTS piles_commissioned ON piles (commissioned_on);
CREATE INDEX IF NOT EXISTS piles_in_service ON piles (station_id) WHERE decommissioned_on IS NULL;

-- EVs at year end per planning unit; county = the city code for a city-wide total.
CREATE TABLE IF NOT EXISTS ev_counts (
    county      text NOT NULL,
    year        smallint NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    ev_count    integer NOT NULL CHECK (ev_count >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county, year)
);

-- Public-service fleet EVs at year end (for the piles : vehicles ≥ 1:2 target).
CREATE TABLE IF NOT EXISTS fleet_counts (
    county         text NOT NULL,
    year           smallint NOT NULL CHECK (year BETWEEN 1990 AND 2100),
    fleet_type     text NOT NULL CHECK (fleet_type IN ('bus', 'sanitation', 'taxi', 'logistics', 'commuter')),
    vehicle_count  integer NOT NULL CHECK (vehicle_count >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county, year, fleet_type)
);

DROP TRIGGER IF EXISTS places_touch ON places;
CREATE TRIGGER places_touch BEFORE UPDATE ON places
    FOR EACH ROW EXECUTE FUNCTION registry_touch_updated_at();
DROP TRIGGER IF EXISTS stations_touch ON stations;
CREATE TRIGGER stations_touch BEFORE UPDATE ON stations
    FOR EACH ROW EXECUTE FUNCTION registry_touch_updated_at();
DROP TRIGGER IF EXISTS piles_touch ON piles;
CREATE TRIGGER piles_touch BEFORE UPDATE ON piles
    FOR EACH ROW EXECUTE FUNCTION registry_touch_updated_at();
DROP TRIGGER IF EXISTS ev_counts_touch ON ev_counts;
CREATE TRIGGER ev_counts_touch BEFORE UPDATE ON ev_counts
    FOR EACH ROW EXECUTE FUNCTION registry_touch_updated_at();
DROP TRIGGER IF EXISTS fleet_counts_touch ON fleet_counts;
CREATE TRIGGER fleet_counts_touch BEFORE UPDATE ON fleet_counts
    FOR EACH ROW EXECUTE FUNCTION registry_touch_updated_at();
