"""The teacher LLM layer: one request/response model, several backends, durable resumable batches.

See `synthesis.teacher.batch` for how a caller submits a batch and reads results.
"""
from synthesis.teacher.batch import BatchReport, BatchRunner
from synthesis.teacher.config import (
                                      EmbeddedConfig,
                                      OpenAIHttpConfig,
                                      TeacherConfig,
                                      TransformersConfig,
                                      VllmConfig,
                                      make_backend,
)
from synthesis.teacher.request import ChatMessage, Choice, SamplingParams, TeacherRequest, TeacherResult
from synthesis.teacher.store import ResultStore

__all__ = ["BatchReport", "BatchRunner", "ChatMessage", "Choice", "EmbeddedConfig", "OpenAIHttpConfig",
           "ResultStore", "SamplingParams", "TeacherConfig", "TeacherRequest", "TeacherResult",
           "TransformersConfig", "VllmConfig", "make_backend"]
