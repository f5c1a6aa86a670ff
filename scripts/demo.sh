#!/usr/bin/env bash
# The main job (`make demo`): the whole chain through the Airflow DAGs, in-process (dag.test() on SQLite in a
# throwaway AIRFLOW_HOME under $OUT), on the shared sample data; ends by printing where the report is.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
exec python -m dags.lib.demo --out "$OUT" "$@"
