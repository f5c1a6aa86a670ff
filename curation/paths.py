"""Where things live on disk: the repo, the embedded models, the shared sample data.

Every default path is overridable by an environment variable so that a cluster, a container and a
laptop can all run the same code.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """Embedded model files (lid.176.ftz, the SmolLM2 GGUF) put in place by `make setup`."""
    return Path(os.environ.get("PHI_MODELS_DIR", REPO_ROOT / ".cache" / "models"))


def shared_data_dir() -> Path:
    """Real third-party sample data (read-only), beside the repository by default."""
    return Path(os.environ.get("PHI_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def require_file(path: str | os.PathLike, what: str, how_to_get: str = "run `make setup`") -> Path:
    """Return `path` if it exists, else fail with a message that names it and says how to get it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found at {p}; {how_to_get}")
    return p
