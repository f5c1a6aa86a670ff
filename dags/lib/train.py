"""The mixture_build and pretrain DAGs' logic: where builds and runs go, a build's plan files, which build
a run trains on, and the effective training config (the given YAML with the mixture and output folder of
this run)."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from dags.lib.paths import dataset_root

log = logging.getLogger(__name__)


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


INPUTS = "_inputs"  # under a mixture root: <key>.json = the build made from one set of input versions


def input_versions(cm) -> tuple[str, dict]:
    """What a build reads, as (key, {phase/source: version folder or URI, or file:size:stamp for plain
    files}), the key also covering the mixture YAML's text: equal keys mean the same build."""
    import hashlib
    import json

    inputs = {}
    for (i, j), res in sorted(cm.resolved.items()):
        src = f"{cm.config.phases[i].name}/{cm.config.phases[i].sources[j].name}"
        version = str(res.version_dir) if res.version_dir else res.version_uri  # versions are immutable
        inputs[src] = version or [_file_stamp(f) for f in res.files]
    doc = json.dumps(
        {"mixture": hashlib.sha256(cm.text.encode()).hexdigest(), "inputs": inputs}, sort_keys=True
    )
    return hashlib.sha256(doc.encode()).hexdigest()[:16], inputs


def _file_stamp(path: str) -> str:
    """`path:size:stamp` of a plain input file (stamp: its mtime, or an object's ETag), so a file replaced
    in place changes the key."""
    if "://" not in path:
        st = Path(path).stat()
        return f"{path}:{st.st_size}:{int(st.st_mtime)}"
    from curation.ingest.files import fsspec_uri, url_to_fs

    fs, fs_path = url_to_fs(fsspec_uri(path))
    info = fs.info(fs_path)
    stamp = info.get("ETag") or info.get("LastModified") or info.get("mtime") or info.get("created")
    return f"{path}:{info.get('size')}:{str(stamp).strip(chr(34))}"


def built_from(root: str | Path, key: str) -> str | None:
    """The published build of this mixture made from exactly these inputs, if there is one."""
    import json

    record = Path(root) / INPUTS / f"{key}.json"
    if not record.is_file():
        return None
    version = json.loads(record.read_text())["version"]
    return version if (Path(root) / version / "manifest.json").is_file() else None


def record_inputs(root: str | Path, key: str, inputs: dict, version: str) -> None:
    import json

    out = Path(root) / INPUTS / f"{key}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"version": version, "inputs": inputs}, indent=2))


def plan_build(mixture_yaml: str | Path, name: str, version: str) -> dict:
    """The per-phase/source token plan of a build: logged as a table, written as JSON + a stacked-bar PNG
    into `<mixture root>/_plans/<version>/`; returns where the build goes, its input versions (`inputs_key`;
    `built`: the build already made from them, if any) and `auto_pretrain` (plain JSON for XCom)."""
    import json

    from training.mixture.plan import plan_table, plot_plan
    from training.mixture.validate import check_mixture

    cm = check_mixture(mixture_yaml)
    key, inputs = input_versions(cm)
    log.info("mixture plan:\n%s", plan_table(cm.plans))
    root = mixture_root(name)
    plans = root / "_plans" / version
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "plan.json").write_text(json.dumps([p.to_dict() for p in cm.plans], indent=2))
    plot_plan(cm.plans, plans / "plan.png")
    return {
        "version": version,
        "name": name,
        "root": str(root),
        "build_dir": str(root / version),
        "plan": str(plans / "plan.json"),
        "inputs_key": key,
        "inputs": inputs,
        "built": built_from(root, key),
        "auto_pretrain": cm.config.auto_pretrain,
    }


def resolve_mixture(explicit: str | None, event_path: str | None, config_mixture: str | None) -> Path:
    """The build to train on: the param, else the triggering mixture Asset event, else the config's."""
    for candidate in (explicit, event_path, config_mixture):
        if candidate:
            path = Path(candidate)
            if (path / "CURRENT").is_file():
                path = path / (path / "CURRENT").read_text().strip()
            if not (path / "manifest.json").is_file():
                raise FileNotFoundError(
                    f"mixture build {path} has no manifest.json; build it with the "
                    f"mixture_build DAG or `python -m training mixture build`"
                )
            return path
    raise ValueError(
        "no mixture given: set the `mixture` param, trigger from the mixture Asset, or set "
        "`mixture:` in the training config"
    )


def effective_train_config(
    config_path: str | Path, mixture: str | Path, out_dir: str | Path, overrides: dict | None = None
) -> Path:
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
