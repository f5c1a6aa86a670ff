# The GPU trainer: CUDA torch (PyPI's Linux torch wheel, at the lock's version) plus the project, and an
# Airflow Celery worker (apache-airflow from the lock, the celery/postgres providers from the `worker`
# extra) so compose runs it as the worker of the `gpu` queue: the pretrain DAG's torchrun tasks execute
# here, on this container's GPUs. Code is bind-mounted at /opt/phi at runtime (editable install).
FROM python:3.11-slim-bookworm
# AIRFLOW_HOME/HOME writable by any uid of group 0 (compose runs it as ${AIRFLOW_UID}:0, like Airflow's image)
ENV AIRFLOW_HOME=/opt/airflow HOME=/home/airflow PIP_NO_CACHE_DIR=1
RUN mkdir -p /opt/airflow /home/airflow && chgrp -R 0 /opt/airflow /home/airflow \
 && chmod -R g+rwX /opt/airflow /home/airflow
COPY . /opt/phi
RUN pip install -c /opt/phi/requirements.lock -e "/opt/phi[worker]" \
 && python -c "import airflow, airflow.providers.celery, torch; print('airflow', airflow.__version__, 'torch', torch.__version__)"
WORKDIR /opt/phi
# compose's `trainer` service runs `airflow celery worker --queues gpu`; a one-shot run passes its own command
CMD ["airflow", "celery", "worker", "--queues", "gpu", "--concurrency", "1"]
