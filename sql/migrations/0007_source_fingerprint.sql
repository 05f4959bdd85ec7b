-- An unchanged re-ingest read and parsed every file only to find the same rows. A version now also records the
-- fingerprint of the source's raw answer it was last confirmed from (for a local CSV file: its bytes, with the
-- series' settings); a later answer with the same fingerprint is unchanged without being parsed. NULL: not
-- known (a remote source, or stored before this), which only means the answer is parsed and hashed as before.
ALTER TABLE series_versions ADD COLUMN source_fingerprint text;
