"""The teacher LLM layer: one request/response model, several backends, durable resumable batches.

See `synthesis.teacher.batch` for how a caller submits a batch and reads results, and
`synthesis.teacher.registry` for the backends.
"""

from synthesis.teacher.backends.base import RetryConfig
from synthesis.teacher.backends.embedded import EmbeddedConfig
from synthesis.teacher.backends.openai_http import OpenAIHttpConfig
from synthesis.teacher.backends.transformers_local import TransformersConfig
from synthesis.teacher.backends.vllm_offline import VllmConfig
from synthesis.teacher.batch import BatchReport, BatchRunner
from synthesis.teacher.config import TeacherConfig
from synthesis.teacher.registry import BACKEND_KINDS, BACKENDS, make_backend
from synthesis.teacher.request import ChatMessage, Choice, SamplingParams, TeacherRequest, TeacherResult
from synthesis.teacher.store import ResultStore

__all__ = [
    "BACKENDS",
    "BACKEND_KINDS",
    "BatchReport",
    "BatchRunner",
    "ChatMessage",
    "Choice",
    "EmbeddedConfig",
    "OpenAIHttpConfig",
    "ResultStore",
    "RetryConfig",
    "SamplingParams",
    "TeacherConfig",
    "TeacherRequest",
    "TeacherResult",
    "TransformersConfig",
    "VllmConfig",
    "make_backend",
]
