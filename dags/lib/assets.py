"""Every Asset that chains the DAGs, in one place (light: only Airflow's SDK and path helpers).

    web_curated (web_curation, nightly_refresh) -> edu_classifier -> web_edu ─┐
                                             synthetic_data -> synthetic ─────┴─> mixture_build -> mixture -> pretrain

Each producing task sets the event's `extra` to {version, path, ...}; consumers read the path from it
(or from the dataset root's CURRENT when triggered by hand).
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
