"""What every generator provides: the prompt for a seed, the parser of the teacher's answer, and its own
verification (`verify`: kinds with a checkable answer ask the teacher for independent solves and `compare`
them with the stated answer; code runs its tests). Prompt versions are part of every request key, so editing a
template here means bumping its version."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from synthesis.teacher import BatchReport, BatchRunner, ChatMessage, SamplingParams, TeacherRequest
from synthesis.textbook.generators.schema import SHORT, char_budget, obj, pattern, prose, steps
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.seeds_catalog import STYLES
from synthesis.textbook.verify.math import check_by_agreement, extract_final_answer

if TYPE_CHECKING:  # annotations only: recipes import this package to validate `generator`
    from synthesis.textbook.recipes import VerifyConfig

SYSTEM = (
    "You are an expert teacher who writes clear, correct and engaging educational material. "
    "Write only the requested content, with no preamble and no closing remarks."
)


@dataclass
class Parsed:
    """A parsed completion: the dataset text and its structured parts, or why it cannot be used."""

    text: str | None = None
    fields: dict = field(default_factory=dict)
    reason: str | None = None  # reject reason (None = usable)
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def web_block(seed: SeedDraw) -> str:
    """The Cosmopedia-style preamble embedding the seed document's extract (empty without one)."""
    if seed.web is None:
        return ""
    return (
        "Here is an extract from a web page:\n<extract>\n" + seed.web.extract + "\n</extract>\n\n"
        "Use the extract as inspiration where it is relevant to the topic; do not mention the extract.\n\n"
    )


def section(text: str, name: str, following: list[str]) -> str | None:
    """The text after `Name:` up to the next of `following` headers (case-insensitive, markdown-tolerant)."""
    head = re.search(rf"(?im)^[#*\s]*{name}\s*\**\s*:?\**\s*", text)
    if not head:
        return None
    rest = text[head.end() :]
    stops = [m.start() for f in following for m in [re.search(rf"(?im)^[#*\s]*{f}\s*\**\s*:", rest)] if m]
    body = rest[: min(stops)] if stops else rest
    return body.strip() or None


@dataclass
class ToVerify:
    """One parsed sample handed to its generator's `verify`."""

    sample_id: str
    parsed: Parsed
    config: VerifyConfig
    template_version: str  # the generation request's (solve requests derive theirs from it)
    structured: bool = False  # the sample was generated as JSON: solves are asked for JSON too


@dataclass
class Verdict:
    """A generator's verdict on one sample: verified True/False, or None where the kind has nothing to check;
    the evidence recorded on the row; the reject reason when it is False; and which kind of verification it
    was (`ground_truth`, `self_consistency`, `tests_run`; None when nothing was checked)."""

    verified: bool | None
    evidence: dict
    reason: str = ""
    kind: str | None = None


NOT_APPLICABLE = Verdict(None, {"method": "not_applicable"})


@dataclass
class VerifyContext:
    """What verification may use: the run's teacher (solves are stored and resumed like generations), a seed
    for each solve request, and the number of parallel sandboxes."""

    runner: BatchRunner
    solve_seed: Callable[[str, int], int]
    workers: int = 2
    reports: list[BatchReport] = field(default_factory=list)


class Generator(ABC):
    """A kind of synthetic sample. Structured (the default): `json_prompt` + `schema`, and the teacher's JSON
    is read by `from_json`; free text (for endpoints without structured output): `prompt` + `parse`."""

    kind: ClassVar[str]
    prompt_version: ClassVar[str]
    json_version: ClassVar[str] = "json-v1"
    #: what a recipe without `structured:` gets (JSON for every kind since the textbook schema holds the
    #: section to a minimum length, BENCHMARKS.md); a kind may override it
    structured_by_default: ClassVar[bool] = True

    def structured(self, recipe_choice: bool | None) -> bool:
        return self.structured_by_default if recipe_choice is None else recipe_choice

    def template_version(self, recipe_version: str, structured: bool = False) -> str:
        return f"{self.kind}-{self.json_version if structured else self.prompt_version}/{recipe_version}"

    def messages(self, seed: SeedDraw, structured: bool = False) -> tuple[ChatMessage, ...]:
        user = self.json_prompt(seed) if structured else self.prompt(seed)
        return (ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=user))

    @abstractmethod
    def prompt(self, seed: SeedDraw) -> str: ...

    @abstractmethod
    def parse(self, text: str) -> Parsed: ...

    @abstractmethod
    def json_prompt(self, seed: SeedDraw) -> str:
        """The prompt asking for the answer as JSON with the schema's keys."""

    @abstractmethod
    def schema(self, max_tokens: int) -> dict:
        """The JSON schema of the answer, its fields sized so the object fits `max_tokens` (schema.py)."""

    @abstractmethod
    def from_json(self, value: dict) -> Parsed:
        """The schema-valid answer as the same `Parsed` fields `parse` gives for free text."""

    def read(self, result, seed: SeedDraw) -> Parsed:
        """A stored teacher result for the sample drawn from `seed`: structured requests come back parsed and
        schema-valid (`from_json`), free text goes through `parse`."""
        return (
            self.from_json(result.parsed)
            if isinstance(result.parsed, dict)
            else self.parse(result.text or "")
        )

    def verify(self, items: list[ToVerify], ctx: VerifyContext) -> list[Verdict]:
        """One verdict per item (same order). Default: nothing to check."""
        return [NOT_APPLICABLE for _ in items]

    def prose(self, parsed: Parsed) -> str:
        """The text the language check reads (code overrides it: its prose is the docstring)."""
        return parsed.text or ""

    @staticmethod
    def style_text(seed: SeedDraw) -> str:
        return STYLES[seed.style]


class AnsweredGenerator(Generator):
    """A kind whose completion is a problem, its worked solution and a short final answer (math, puzzle). The
    pipeline checks the answer against independent solves of the problem, so every such kind parses into the
    same fields (problem, solution, answer, answer_method) and asks the solver the same way."""

    #: the section headers, as the dataset text and the solver prompt write them, e.g. ("Problem", "Solution",
    #: "Final answer"); a missing section is rejected as `no_<header>` (`no_final_answer` for the answer)
    headers: ClassVar[tuple[str, str, str]]
    solver_system: ClassVar[str]
    answer_hint: ClassVar[str]  # what the solver's answer line holds, e.g. "number"

    @abstractmethod
    def find_sections(self, text: str) -> tuple[str | None, str | None]:
        """(problem, solution) as found under the headers a teacher actually writes (None where absent)."""

    def reject_answer(self, answer: str) -> Parsed | None:
        """The kind's check of a present answer: a reject, or None when it is usable."""
        return None

    def parse(self, text: str) -> Parsed:
        problem, solution = self.find_sections(text)
        answer = extract_final_answer(text)
        problem_h, solution_h, answer_h = self.headers
        if not problem:
            return Parsed(reason=f"no_{problem_h.lower()}", detail=f"no '{problem_h}:' section")
        if not solution:
            return Parsed(reason=f"no_{solution_h.lower()}", detail=f"no '{solution_h}:' section")
        if answer.answer is None:
            return Parsed(reason="no_final_answer", detail=f"no '{answer_h}:' line")
        rejected = self.reject_answer(answer.answer)
        if rejected is not None:
            return rejected
        body = f"{problem_h}: {problem}\n\n{solution_h}: {solution}\n\n{answer_h}: {answer.answer}"
        return Parsed(
            text=body,
            fields={
                "problem": problem,
                "solution": solution,
                "answer": answer.answer,
                "answer_method": answer.method,
            },
        )

    #: the JSON keys of (problem, reasoning, answer), in the order the teacher writes them
    json_keys: ClassVar[tuple[str, str, str]]

    def schema(self, max_tokens: int) -> dict:
        budget = char_budget(max_tokens, 3) - 16
        problem_k, steps_k, answer_k = self.json_keys
        return obj(
            **{
                problem_k: prose(20, budget // 2),
                steps_k: steps(1, 3, prose(5, max(budget // 6, 12))),
                answer_k: pattern(self.answer_pattern),
            }
        )

    answer_pattern: ClassVar[str] = SHORT

    def from_json(self, value: dict) -> Parsed:
        problem_k, steps_k, answer_k = self.json_keys
        problem, answer = value[problem_k].strip(), value[answer_k].strip()
        solution = "\n".join(s.strip() for s in value[steps_k] if s.strip())
        if not solution:
            return Parsed(reason=f"no_{self.headers[1].lower()}", detail=f"empty {steps_k!r}")
        rejected = self.reject_answer(answer)
        if rejected is not None:
            return rejected
        problem_h, solution_h, answer_h = self.headers
        body = f"{problem_h}: {problem}\n\n{solution_h}: {solution}\n\n{answer_h}: {answer}"
        return Parsed(
            text=body,
            fields={"problem": problem, "solution": solution, "answer": answer, "answer_method": "json"},
        )

    @abstractmethod
    def compare(self, claimed: str | None, solved: str | None) -> bool:
        """Whether a solve's final answer agrees with the claimed one."""

    def verify(self, items: list[ToVerify], ctx: VerifyContext) -> list[Verdict]:
        """Self-consistency: k independent teacher solves per item, in one batch; verified when at least
        `min_agreement` of them reach an answer `compare` accepts."""
        reqs = [self.solve_requests(it, ctx) for it in items]
        flat = [r for rs in reqs for r in rs]
        if not flat:
            return []
        ctx.reports.append(ctx.runner.run(flat))
        results = iter(ctx.runner.results(flat))
        verdicts = []
        for it, rs in zip(items, reqs):
            texts = [self.solve_text(r) for r in (next(results) for _ in rs)]
            chk = check_by_agreement(it.parsed.fields["answer"], texts, it.config.min_agreement, self.compare)
            verdicts.append(Verdict(chk.verified, chk.evidence, "unverified_answer", "self_consistency"))
        return verdicts

    def solve_text(self, result) -> str | None:
        """A stored solve as text with a final-answer line (a structured solve's JSON answer becomes one)."""
        if result is None or not result.ok:
            return None
        if isinstance(result.parsed, dict):
            return f"{self.headers[2]}: {result.parsed[self.json_keys[2]]}"
        return result.text

    def solve_schema(self, max_tokens: int) -> dict:
        _, steps_k, answer_k = self.json_keys
        budget = char_budget(max_tokens, 2) - 16
        return obj(
            **{steps_k: steps(1, 3, prose(5, max(budget // 3, 12))), answer_k: pattern(self.answer_pattern)}
        )

    def solve_requests(self, it: ToVerify, ctx: VerifyContext) -> list[TeacherRequest]:
        v = it.config
        return [
            TeacherRequest(
                id=f"{it.sample_id}-solve{j}",
                messages=self.solve_messages(it.parsed, it.structured),
                sampling=SamplingParams(
                    temperature=v.solve_temperature,
                    top_p=0.95,
                    max_tokens=v.solve_max_tokens,
                    seed=ctx.solve_seed(it.sample_id, j),
                ),
                response_schema=self.solve_schema(v.solve_max_tokens) if it.structured else None,
                template_version=f"solve-{it.template_version}",
            )
            for j in range(v.k)
        ]

    def solve_messages(self, parsed: Parsed, structured: bool = False) -> tuple[ChatMessage, ...]:
        problem_h, _, answer_h = self.headers
        _, steps_k, answer_k = self.json_keys
        ending = (
            f"Answer in JSON with keys {steps_k} (a list of short steps) and {answer_k} "
            f"(the {self.answer_hint} only)."
            if structured
            else f"End with a line of the form '{answer_h}: <{self.answer_hint}>'."
        )
        return (
            ChatMessage(role="system", content=self.solver_system),
            ChatMessage(
                role="user",
                content=f"Solve this {problem_h.lower()} step by step. {ending}\n\n"
                f"{problem_h}: {parsed.fields['problem']}",
            ),
        )
