"""The teacher backends, registered once: `kind -> Backend class`. Everything that names backends reads this
map: the config union (`BackendConfig`), `make_backend`, the CLI's `--backend` choices and the DAGs' `backend`
Param enums.

Adding a backend: write `synthesis/teacher/backends/<name>.py` (its `BackendConfigBase` subclass with a
`kind` literal, and the `Backend` subclass with `name` and `config` set), add its class to `_REGISTERED`
below, and test it. Nothing else lists backends.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from synthesis.teacher.backends.base import Backend
from synthesis.teacher.backends.embedded import EmbeddedBackend
from synthesis.teacher.backends.openai_http import OpenAIHttpBackend
from synthesis.teacher.backends.transformers_local import TransformersBackend
from synthesis.teacher.backends.vllm_offline import VllmBackend

_REGISTERED: tuple[type[Backend], ...] = (
    EmbeddedBackend,
    OpenAIHttpBackend,
    TransformersBackend,
    VllmBackend,
)

BACKENDS: dict[str, type[Backend]] = {cls.name: cls for cls in _REGISTERED}
BACKEND_KINDS: list[str] = list(BACKENDS)
#: the backend a config without a `backend:` section gets (the CPU default, no network, no GPU)
DEFAULT_BACKEND = "embedded"

# A discriminated union over the registered configs, so YAML errors name the field of the right backend.
BackendConfig = Annotated[
    Union[tuple(cls.config for cls in _REGISTERED)],  # noqa: UP007 - built at run time
    Field(discriminator="kind"),
]


def _check_registry() -> None:
    for kind, cls in BACKENDS.items():
        tag = cls.config.model_fields["kind"].default
        if tag != kind:
            raise TypeError(f"teacher backend {cls.__name__}: name {kind!r} but its config's kind is {tag!r}")


_check_registry()


def make_backend(cfg) -> Backend:
    """Build (but do not start) the backend a config names."""
    try:
        cls = BACKENDS[cfg.kind]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown teacher backend config {cfg!r}; registered kinds: {BACKEND_KINDS}"
        ) from None
    return cls.from_config(cfg)
