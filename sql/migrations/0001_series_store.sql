-- Series store: series, immutable versions, shared observation rows, quarantine and ingest lineage.
--
-- How versions share rows
-- -----------------------
-- Each observation row carries the version range it belongs to: [valid_from, valid_to), both version
-- numbers of its series (valid_to NULL = still part of the current version). Version k therefore consists
-- of the rows with valid_from <= k AND (valid_to IS NULL OR valid_to > k).
--   * unchanged re-download: nothing is written.
--   * extension (only new timestamps after the last one): the new rows are inserted with
--     valid_from = current version; no new version.
--   * revision (a past value changed beyond the tolerance, a past timestamp dropped, or a point inserted
--     inside the stored history): version k+1 is created; rows that changed or disappeared get
--     valid_to = k+1, rows that changed or are new are inserted with valid_from = k+1. Every unchanged row
--     is shared by both versions and is not copied.
-- Rows are never updated except to close them (valid_to NULL -> k+1) and never deleted (triggers below),
-- so every version reads back exactly as it was. recorded_at lets as-of reads also drop points that were
-- appended to a version after the instant asked for.

CREATE TABLE ingest_runs (
    ingest_run_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    config_name    text,
    config_path    text,
    triggered_by   text NOT NULL DEFAULT 'cli',     -- 'cli', or the Airflow dag_id/run_id
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'failed')),
    n_series       integer,
    n_failed       integer,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);

CREATE TABLE series (
    series_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    name        text NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,   -- source parameters of the latest download
    frequency   text,                                 -- pandas offset alias, e.g. 'W-SUN', 'B', 'QS-OCT'
    unit        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, name)
);

CREATE TABLE series_versions (
    version_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_id          bigint NOT NULL REFERENCES series (series_id),
    version_no         integer NOT NULL CHECK (version_no >= 1),
    reason             text NOT NULL CHECK (reason IN ('initial', 'revised')),
    is_current         boolean NOT NULL,
    parent_version_id  bigint REFERENCES series_versions (version_id),
    -- what the revision changed relative to its parent (0 for 'initial')
    n_changed          integer NOT NULL DEFAULT 0,
    n_added            integer NOT NULL DEFAULT 0,
    n_removed          integer NOT NULL DEFAULT 0,
    -- grows while the version is current and downloads only append points
    n_extended         integer NOT NULL DEFAULT 0,
    row_count          integer NOT NULL,
    first_ts           timestamp,
    last_ts            timestamp,
    download_sha256    text NOT NULL,            -- hash of the last download accepted into this version
    source_params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    ingest_run_id      bigint REFERENCES ingest_runs (ingest_run_id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    superseded_at      timestamptz,
    UNIQUE (series_id, version_no)
);

-- at most one current version per series, enforced by the database itself
CREATE UNIQUE INDEX series_versions_one_current ON series_versions (series_id) WHERE is_current;

-- No row-level foreign keys here: a per-row RI check doubled the cost of bulk loads. The statement-level
-- trigger observations_version_exists below checks every inserted batch at once, and more strictly
-- (the row's version must exist, not only its series).
CREATE TABLE observations (
    series_id      bigint NOT NULL,
    ts             timestamp NOT NULL,          -- naive UTC
    value          double precision NOT NULL,
    valid_from     integer NOT NULL,            -- first version_no containing this row
    valid_to       integer,                     -- first version_no no longer containing it; NULL = current
    ingest_run_id  bigint,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (series_id, ts, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- one current value per timestamp: duplicates are impossible, whatever the writer does
CREATE UNIQUE INDEX observations_current ON observations (series_id, ts) WHERE valid_to IS NULL;

CREATE TABLE quarantine (
    quarantine_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series_id            bigint REFERENCES series (series_id),
    source               text NOT NULL,
    series_name          text NOT NULL,
    ingest_run_id        bigint REFERENCES ingest_runs (ingest_run_id),
    reason               text NOT NULL,             -- the human-readable message
    failed_expectations  jsonb NOT NULL,            -- one object per failed Great Expectations check
    validation_result    jsonb,                     -- Great Expectations' own result summary
    row_count            integer NOT NULL,
    batch                jsonb NOT NULL,            -- the rejected rows, as downloaded
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_series ON quarantine (source, series_name, created_at DESC);

CREATE TABLE ingest_results (
    ingest_run_id  bigint NOT NULL REFERENCES ingest_runs (ingest_run_id),
    source         text NOT NULL,
    series_name    text NOT NULL,
    series_id      bigint REFERENCES series (series_id),
    outcome        text NOT NULL
                   CHECK (outcome IN ('initial', 'unchanged', 'extended', 'revised', 'quarantined', 'failed')),
    version_id     bigint REFERENCES series_versions (version_id),
    n_rows         integer,
    n_added        integer NOT NULL DEFAULT 0,
    n_changed      integer NOT NULL DEFAULT 0,
    n_removed      integer NOT NULL DEFAULT 0,
    error          text,
    retryable      boolean,
    duration_ms    integer,
    PRIMARY KEY (ingest_run_id, source, series_name)
);

-- Immutability guards ---------------------------------------------------------------------------------

CREATE FUNCTION observations_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'observations are immutable: delete of series % ts % refused', OLD.series_id, OLD.ts;
    END IF;
    IF OLD.valid_to IS NOT NULL
       OR NEW.valid_to IS NULL
       OR (NEW.series_id, NEW.ts, NEW.value, NEW.valid_from, NEW.ingest_run_id, NEW.recorded_at)
          IS DISTINCT FROM
          (OLD.series_id, OLD.ts, OLD.value, OLD.valid_from, OLD.ingest_run_id, OLD.recorded_at) THEN
        RAISE EXCEPTION 'observations are immutable: only closing a current row (valid_to) is allowed '
                        '(series %, ts %)', OLD.series_id, OLD.ts;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER observations_immutable
    BEFORE UPDATE OR DELETE ON observations
    FOR EACH ROW EXECUTE FUNCTION observations_immutable();

CREATE FUNCTION observations_version_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    SELECT n.series_id, n.valid_from INTO orphan
    FROM (SELECT DISTINCT series_id, valid_from FROM new_rows) n
    WHERE NOT EXISTS (SELECT 1 FROM series_versions v
                      WHERE v.series_id = n.series_id AND v.version_no = n.valid_from)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'observations reference version % of series %, which does not exist',
                        orphan.valid_from, orphan.series_id
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER observations_version_exists
    AFTER INSERT ON observations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION observations_version_exists();

CREATE FUNCTION series_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'series versions are immutable: delete of version % refused', OLD.version_id;
    END IF;
    -- a superseded version is frozen; the current one may only grow (extension) or be superseded
    IF NOT OLD.is_current
       OR (NEW.version_id, NEW.series_id, NEW.version_no, NEW.reason, NEW.parent_version_id,
           NEW.n_changed, NEW.n_added, NEW.n_removed, NEW.first_ts, NEW.created_at, NEW.ingest_run_id)
          IS DISTINCT FROM
          (OLD.version_id, OLD.series_id, OLD.version_no, OLD.reason, OLD.parent_version_id,
           OLD.n_changed, OLD.n_added, OLD.n_removed, OLD.first_ts, OLD.created_at, OLD.ingest_run_id)
       OR NEW.row_count < OLD.row_count THEN
        RAISE EXCEPTION 'series version % is immutable (only extending or superseding the current version '
                        'is allowed)', OLD.version_id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER series_versions_immutable
    BEFORE UPDATE OR DELETE ON series_versions
    FOR EACH ROW EXECUTE FUNCTION series_versions_immutable();

-- Reading versions back ------------------------------------------------------------------------------

-- The rows of version p_version_no of a series, exactly as that version held them.
CREATE FUNCTION series_observations_at_version(p_series_id bigint, p_version_no integer)
RETURNS TABLE (ts timestamp, value double precision)
LANGUAGE sql STABLE AS $$
    SELECT o.ts, o.value
    FROM observations o
    WHERE o.series_id = p_series_id
      AND o.valid_from <= p_version_no
      AND (o.valid_to IS NULL OR o.valid_to > p_version_no)
    ORDER BY o.ts
$$;

-- The rows of a series as they were known at instant p_as_of: the version current then, without the
-- points appended to it later.
CREATE FUNCTION series_observations_as_of(p_series_id bigint, p_as_of timestamptz)
RETURNS TABLE (ts timestamp, value double precision)
LANGUAGE sql STABLE AS $$
    WITH v AS (
        SELECT max(version_no) AS version_no
        FROM series_versions
        WHERE series_id = p_series_id AND created_at <= p_as_of
    )
    SELECT o.ts, o.value
    FROM observations o, v
    WHERE o.series_id = p_series_id
      AND o.valid_from <= v.version_no
      AND (o.valid_to IS NULL OR o.valid_to > v.version_no)
      AND o.recorded_at <= p_as_of
    ORDER BY o.ts
$$;

-- The current data of every series, for analysts and dashboards.
CREATE VIEW current_observations AS
SELECT s.series_id, s.source, s.name AS series_name, o.ts, o.value, v.version_no
FROM observations o
JOIN series s USING (series_id)
JOIN series_versions v ON v.series_id = o.series_id AND v.is_current
WHERE o.valid_to IS NULL;
