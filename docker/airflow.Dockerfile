# Airflow 3 image with the project's dependencies and a JRE (spark-submit runs the Spark driver here).
# The repository is bind-mounted over /opt/phi at runtime; the copy below only lets the build resolve
# and install the project (editable, so the mounted code is what runs).
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

COPY --chown=airflow:0 . /opt/phi
USER airflow
# the lock pins the stack that was tested together (requirements.lock); the image's own Airflow stays
# (the `worker` extra pins the celery and postgres providers)
RUN pip install --no-cache-dir -c /opt/phi/requirements.lock -e "/opt/phi[worker]" "apache-airflow==${AIRFLOW_VERSION}"
