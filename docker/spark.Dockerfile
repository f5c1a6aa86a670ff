# Spark executors for the curation job: the official apache/spark image plus the same Python (3.11)
# and libraries as the driver, because mapInArrow runs the project's Python steps on the workers and
# PySpark requires driver and executors to share the Python minor version.
ARG SPARK_IMAGE=apache/spark:4.2.0-scala2.13-java17-ubuntu
FROM ${SPARK_IMAGE}

USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3.11-dev build-essential \
 && rm -rf /var/lib/apt/lists/*
COPY . /opt/phi
RUN python3.11 -m ensurepip && python3.11 -m pip install --no-cache-dir -c /opt/phi/requirements.lock -e /opt/phi
USER spark
