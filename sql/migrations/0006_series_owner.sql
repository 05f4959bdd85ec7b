-- Series are identified by (source, name) across every config. Two configs giving one (source, name)
-- different parameters overwrote each other's series on every ingest; the config that first stored a series
-- is now recorded, and another config's different parameters for it are refused, naming both configs.
ALTER TABLE series ADD COLUMN config_name text;   -- NULL: stored before this was recorded, or without a config
