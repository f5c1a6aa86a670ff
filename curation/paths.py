"""Where things live on disk: the repo, the embedded models, the shared sample data.

Every default path is overridable by an environment variable so that a cluster, a container and a
laptop can all run the same code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def models_dir() -> Path:
    """Embedded model files (lid.176.ftz, the SmolLM2 GGUF) put in place by `make setup`."""
    return Path(os.environ.get("PHI_MODELS_DIR", REPO_ROOT / ".cache" / "models"))


def shared_data_dir() -> Path:
    """Real third-party sample data (read-only), beside the repository by default."""
    return Path(os.environ.get("PHI_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")

#: Variables with a project default, used when they are unset (so `${PHI_SHARED_DATA}` works on a laptop).
_PROJECT_DEFAULTS = {"PHI_SHARED_DATA": shared_data_dir, "PHI_MODELS_DIR": models_dir}


def expand_env(value: str, where: str) -> str:
    """`${VAR}` / `${VAR:-fallback}` in a configured path -> the variable's value, else the fallback, else the
    project default (PHI_SHARED_DATA, PHI_MODELS_DIR). Anything else unset (or empty) is an error naming
    `where` and the variable, never a silently empty path."""

    def sub(m: re.Match) -> str:
        name = m["name"]
        if os.environ.get(name):
            return os.environ[name]
        if m["default"] is not None:
            return m["default"]
        if name in _PROJECT_DEFAULTS:
            return str(_PROJECT_DEFAULTS[name]())
        raise ValueError(
            f"{where}: environment variable {name} is not set (write ${{{name}:-fallback}} to give a default)"
        )

    return _ENV_REF.sub(sub, value)


def require_file(path: str | os.PathLike, what: str, how_to_get: str = "run `make setup`") -> Path:
    """Return `path` if it exists, else fail with a message that names it and says how to get it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found at {p}; {how_to_get}")
    return p


#: A dataset reference naming an Iceberg table of the configured catalog (curation/tables):
#: `iceberg:<table>`, or `iceberg:<table>@<run id | snapshot id>` for one of its versions.
TABLE_PREFIX = "iceberg:"


def is_table_reference(dataset: str | os.PathLike) -> bool:
    return str(dataset).startswith(TABLE_PREFIX)


def parse_table_reference(reference: str) -> tuple[str, str | None]:
    """`iceberg:<table>[@<version>]` -> (table, version or None); a ValueError names anything else."""
    name, _, version = str(reference).removeprefix(TABLE_PREFIX).partition("@")
    if not is_table_reference(reference) or not name:
        expected = f"{TABLE_PREFIX}<table>[@<run id | snapshot id>]"
        raise ValueError(f"{reference!r} is not a table reference (expected {expected})")
    return name, version or None
