# The GPU trainer: CUDA torch (PyPI's Linux wheel) plus the project; code bind-mounted at /opt/phi.
FROM python:3.11-slim-bookworm
COPY . /opt/phi
RUN pip install --no-cache-dir -c /opt/phi/requirements.lock -e /opt/phi
WORKDIR /opt/phi
