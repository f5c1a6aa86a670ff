# Environment for every project command (sourced by the Makefile and .ci/run).
# Each setting fixes a pitfall seen on these machines (see README "Environment").
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
export PYSPARK_PYTHON="$ROOT/.venv/bin/python" PYSPARK_DRIVER_PYTHON="$ROOT/.venv/bin/python"
export SPARK_LOCAL_IP=127.0.0.1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GX_ANALYTICS_ENABLED=false
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=4
export PHI_MODELS_DIR=${PHI_MODELS_DIR:-$ROOT/.cache/models}
export PHI_SHARED_DATA=${PHI_SHARED_DATA:-$ROOT/../shared/data}
