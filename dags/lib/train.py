"""The mixture_build and pretrain DAGs' logic: where builds and runs go, which build a run trains on,
and the effective training config (the given YAML with the mixture and output folder of this run)."""
from __future__ import annotations

from pathlib import Path

import yaml

from dags.lib.plan import dataset_root


def mixture_name(yaml_path: str | Path) -> str:
    """The mixture's `name:` (or the file stem when the YAML is too broken to say)."""
    try:
        doc = yaml.safe_load(Path(yaml_path).read_text())
        if isinstance(doc, dict) and isinstance(doc.get("name"), str) and doc["name"].strip():
            return doc["name"].strip()
    except (OSError, yaml.YAMLError):
        pass
    return Path(yaml_path).stem


def mixture_root(name: str) -> Path:
    """`$PHI_DATA_ROOT/mixtures/<name>/`: one build folder per version, CURRENT names the latest gated one."""
    return dataset_root("mixtures") / name


def resolve_mixture(explicit: str | None, event_path: str | None, config_mixture: str | None) -> Path:
    """The build to train on: the param, else the triggering mixture Asset event, else the config's."""
    for candidate in (explicit, event_path, config_mixture):
        if candidate:
            path = Path(candidate)
            if (path / "CURRENT").is_file():
                path = path / (path / "CURRENT").read_text().strip()
            if not (path / "manifest.json").is_file():
                raise FileNotFoundError(f"mixture build {path} has no manifest.json; build it with the "
                                        f"mixture_build DAG or `python -m training mixture build`")
            return path
    raise ValueError("no mixture given: set the `mixture` param, trigger from the mixture Asset, or set "
                     "`mixture:` in the training config")


def effective_train_config(config_path: str | Path, mixture: str | Path, out_dir: str | Path,
                           overrides: dict | None = None) -> Path:
    """Validate the run config with this run's mixture and out_dir (clear error naming file and field),
    and write the config the run really uses into `out_dir/config.yaml`."""
    from training.config import load_config

    over = {"mixture": str(mixture), "out_dir": str(out_dir), **(overrides or {})}
    load_config(config_path, over)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load(Path(config_path).read_text()) or {}
    raw.update(over)
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_config(path)  # what torchrun will read parses to the same run
    return path
