"""Logic behind the DAGs, importable and testable without Airflow (the DAG files only wire it up)."""
