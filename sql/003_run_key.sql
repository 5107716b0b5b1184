-- A run key names one invocation everywhere: logs, reports, metrics, e-mails, this table.
ALTER TABLE import_runs ADD COLUMN run_key text UNIQUE;
