-- "First known" at a cut-off after a series' last point (a delisted ticker, a feature series that stopped) fell
-- back to now(): as-known backtests read today's data there, revisions stored after the cut-off included. It is
-- now the vintage stored when the series' last point up to the cut-off was first recorded: the earliest that holds
-- all its data up to the cut-off, so nothing stored later (a renormalisation, a split adjustment) leaks into the
-- past, and a read no longer changes with what is ingested after a run was planned.
CREATE OR REPLACE FUNCTION series_observations_first_known(p_series_id bigint, p_cutoff timestamp)
RETURNS TABLE (ts timestamp, value double precision)
LANGUAGE sql STABLE AS $$
    SELECT a.ts, a.value
    FROM series_observations_as_of(
        p_series_id,
        coalesce(
            (SELECT min(o.recorded_at) FROM observations o
             WHERE o.series_id = p_series_id AND o.ts >= p_cutoff),
            (SELECT min(o.recorded_at) FROM observations o
             WHERE o.series_id = p_series_id
               AND o.ts = (SELECT max(l.ts) FROM observations l WHERE l.series_id = p_series_id AND l.ts <= p_cutoff)),
            now())) a
    WHERE a.ts <= p_cutoff
    ORDER BY a.ts
$$;
