"""What every generator provides: the prompt for a seed, the parser of the teacher's answer, and its own
verification (`verify`: kinds with a checkable answer ask the teacher for independent solves and `compare` them
with the stated answer; code runs its tests). Prompt versions are part of every request key, so editing a
template here means bumping its version."""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from synthesis.teacher import BatchReport, BatchRunner, ChatMessage, SamplingParams, TeacherRequest
from synthesis.textbook.seeds import SeedDraw
from synthesis.textbook.seeds_catalog import STYLES
from synthesis.textbook.verify.math import check_by_agreement, extract_final_answer

if TYPE_CHECKING:   # annotations only: recipes import this package to validate `generator`
    from synthesis.textbook.recipes import VerifyConfig

SYSTEM = ("You are an expert teacher who writes clear, correct and engaging educational material. "
          "Write only the requested content, with no preamble and no closing remarks.")


@dataclass
class Parsed:
    """A parsed completion: the dataset text and its structured parts, or why it cannot be used."""
    text: str | None = None
    fields: dict = field(default_factory=dict)
    reason: str | None = None      # reject reason (None = usable)
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def web_block(seed: SeedDraw) -> str:
    """The Cosmopedia-style preamble embedding the seed document's extract (empty without one)."""
    if seed.web is None:
        return ""
    return ("Here is an extract from a web page:\n<extract>\n" + seed.web.extract + "\n</extract>\n\n"
            "Use the extract as inspiration where it is relevant to the topic; do not mention the extract.\n\n")


def section(text: str, name: str, following: list[str]) -> str | None:
    """The text after `Name:` up to the next of `following` headers (case-insensitive, markdown-tolerant)."""
    head = re.search(rf"(?im)^[#*\s]*{name}\s*\**\s*:?\**\s*", text)
    if not head:
        return None
    rest = text[head.end():]
    stops = [m.start() for f in following for m in [re.search(rf"(?im)^[#*\s]*{f}\s*\**\s*:", rest)] if m]
    body = rest[: min(stops)] if stops else rest
    return body.strip() or None


@dataclass
class ToVerify:
    """One parsed sample handed to its generator's `verify`."""
    sample_id: str
    parsed: Parsed
    config: VerifyConfig
    template_version: str        # the generation request's (solve requests derive theirs from it)


@dataclass
class Verdict:
    """A generator's verdict on one sample: verified True/False, or None where the kind has nothing to check;
    the evidence recorded on the row; the reject reason when it is False."""
    verified: bool | None
    evidence: dict
    reason: str = ""


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
    kind: ClassVar[str]
    prompt_version: ClassVar[str]

    def template_version(self, recipe_version: str) -> str:
        return f"{self.kind}-{self.prompt_version}/{recipe_version}"

    def messages(self, seed: SeedDraw) -> tuple[ChatMessage, ...]:
        return (ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=self.prompt(seed)))

    @abstractmethod
    def prompt(self, seed: SeedDraw) -> str: ...

    @abstractmethod
    def parse(self, text: str) -> Parsed: ...

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
    answer_hint: ClassVar[str]       # what the solver's answer line holds, e.g. "number"

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
        return Parsed(text=body, fields={"problem": problem, "solution": solution, "answer": answer.answer,
                                         "answer_method": answer.method})

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
            texts = [(r.text if r is not None and r.ok else None) for r in (next(results) for _ in rs)]
            chk = check_by_agreement(it.parsed.fields["answer"], texts, it.config.min_agreement, self.compare)
            verdicts.append(Verdict(chk.verified, chk.evidence, "unverified_answer"))
        return verdicts

    def solve_requests(self, it: ToVerify, ctx: VerifyContext) -> list[TeacherRequest]:
        v = it.config
        return [TeacherRequest(id=f"{it.sample_id}-solve{j}", messages=self.solve_messages(it.parsed),
                               sampling=SamplingParams(temperature=v.solve_temperature, top_p=0.95,
                                                       max_tokens=v.solve_max_tokens,
                                                       seed=ctx.solve_seed(it.sample_id, j)),
                               template_version=f"solve-{it.template_version}")
                for j in range(v.k)]

    def solve_messages(self, parsed: Parsed) -> tuple[ChatMessage, ...]:
        problem_h, _, answer_h = self.headers
        return (ChatMessage(role="system", content=self.solver_system),
                ChatMessage(role="user", content=f"Solve this {problem_h.lower()} step by step. End with a line of "
                                                 f"the form '{answer_h}: <{self.answer_hint}>'.\n\n"
                                                 f"{problem_h}: {parsed.fields['problem']}"))
