-- The Iceberg catalog of the dataset tables (curation/tables, pyiceberg's SQL catalog): its own database on
-- the stack's PostgreSQL, created once when the volume is initialised (docker-entrypoint-initdb.d).
CREATE DATABASE iceberg OWNER airflow;
