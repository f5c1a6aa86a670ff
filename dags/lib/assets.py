"""Every Asset that chains the DAGs, in one place (light: only Airflow's SDK and path helpers).

    nightly_refresh, web_curation ──> web_curated ─────────────────────────────┐
    edu_label_files / weekly ──> edu_classifier ──> edu_model, web_edu ────────┤
    synthetic_data (by hand) ──> synthetic ────────────────────────────────────┴─> mixture_build ──> mixture
    mixture_build, only for a mixture with `auto_pretrain: true` ──> pretrain_request ──> pretrain

Each producing task sets the event's `extra` to {version, path, ...}; consumers read the path from it
(or from the dataset root's CURRENT when triggered by hand). The scheduling policy is in dags/README.md.
"""

from __future__ import annotations

from airflow.sdk import Asset

from dags.lib.paths import dataset_root

#: The published web corpus (web_curation, nightly_refresh).
WEB_CURATED = Asset(name="web_curated", uri=f"file://{dataset_root('web_curated')}", group="corpus")
EDU_MODEL = Asset(name="edu_model", uri=f"file://{dataset_root('edu_models')}", group="model")
WEB_EDU = Asset(name="web_edu", uri=f"file://{dataset_root('web_edu')}", group="corpus")
SYNTHETIC = Asset(name="synthetic", uri=f"file://{dataset_root('synthetic')}", group="corpus")
MIXTURE = Asset(name="mixture", uri=f"file://{dataset_root('mixtures')}", group="mixture")
PRETRAINED = Asset(name="pretrained", uri=f"file://{dataset_root('pretrain')}", group="model")
#: New edu label files landed (human labels, a labelling round): posted by whoever adds them (REST API
#: `POST /api/v2/assets/events`, or an upstream DAG); edu_classifier retrains on it, besides weekly.
EDU_LABEL_FILES = Asset(
    name="edu_label_files", uri=f"file://{dataset_root('edu_label_files')}", group="labels"
)
#: A mixture build that opted in (`auto_pretrain: true`) asks for a pretraining run; nothing else does.
PRETRAIN_REQUEST = Asset(
    name="pretrain_request", uri=f"file://{dataset_root('mixtures')}/_pretrain_requests", group="mixture"
)
