"""Write and validate captions: rounds per (item, variant), bounded concurrency, a resume journal.

Variant `gpt`: written by the first model, reviewed by the second; `gemini`: the reverse. A rejected
caption goes back to its writer with the reviewer's problems, up to `max_rounds`; still rejected ->
the item is dropped (status "rejected"). An endpoint failure or an unreadable reply after re-asks ->
status "error" (dropped too, and retried on a resumed run). Every outcome is reported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data_preprocess.caption_writer.facts import FactsItem
from data_preprocess.caption_writer.llm import ModelCall, dumps_captions
from data_preprocess.caption_writer.prompts import (
    VALIDATOR_SCHEMA,
    expected_captions,
    generator_messages,
    generator_schema,
    revision_messages,
    validator_messages,
)
from data_preprocess.caption_writer.records import finished_record
from data_preprocess.caption_writer.validate import parse_captions, parse_verdict

FINAL = ("accepted", "rejected")
Images = Callable[[FactsItem], Sequence[str]]


@dataclass(frozen=True)
class Variant:
    """Who writes and who reviews one caption variant."""

    name: str
    writer: ModelCall
    reviewer: ModelCall


@dataclass
class Outcome:
    """What happened to one (item, variant)."""

    index: int
    digest: str
    source: str
    task: str
    variant: str
    status: str
    rounds: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    record: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.index}:{self.variant}:{self.digest}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def caption_item(item: FactsItem, variant: Variant, max_rounds: int, images: Sequence[str] = ()) -> Outcome:
    """Run the write -> review -> revise rounds for one item and variant."""
    facts = item.facts
    out = Outcome(item.index, item.digest, facts.source, facts.task, variant.name, "error")
    first = generator_messages(item, images)
    messages, expected = first, expected_captions(facts)
    for number in range(1, max_rounds + 1):
        captions, why = await variant.writer.ask(messages, generator_schema(expected),
                                                 lambda t: parse_captions(t, expected))
        if captions is None or captions.texts is None:
            out.reason = f"writer: {why}"
            return out
        verdict, why = await variant.reviewer.ask(validator_messages(item, captions.texts, images),
                                                  VALIDATOR_SCHEMA, parse_verdict)
        if verdict is None:
            out.reason = f"reviewer: {why}"
            return out
        out.rounds.append({"round": number, "captions": list(captions.texts), "accept": verdict.accept,
                           "problems": list(verdict.problems)})
        if verdict.accept:
            out.status = "accepted"
            out.record = finished_record(item, variant.name, captions.texts)
            return out
        messages = revision_messages(first, dumps_captions(captions.texts), verdict.problems)
    out.status = "rejected"
    out.reason = f"still rejected after {max_rounds} round(s)"
    return out


class Journal:
    """Finished outcomes as JSON lines beside the output; a resumed run skips those already final.

    The first line holds a fingerprint of the run's settings (models, prompt version, rounds): a
    journal left by a run with other settings is discarded, never reused."""

    def __init__(self, path: str | Path, fingerprint: str = ""):
        self.path = Path(path)
        self.done: dict[str, Outcome] = {}
        header = json.dumps({"journal": fingerprint})
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        if lines and lines[0] == header:
            for line in lines[1:]:
                try:
                    outcome = Outcome(**json.loads(line))
                except (json.JSONDecodeError, TypeError):
                    continue  # a line cut short by an interruption
                if outcome.status in FINAL:
                    self.done[outcome.key] = outcome
            self._handle = self.path.open("a", encoding="utf-8")
            self._handle.write("\n")  # end a line an interruption may have cut short
        else:
            self._handle = self.path.open("w", encoding="utf-8")
            self._handle.write(header + "\n")
        self._handle.flush()

    def add(self, outcome: Outcome) -> None:
        self._handle.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


async def run_all(items: Sequence[FactsItem], variants: Sequence[Variant], *, max_rounds: int = 2,
                  workers: int = 64, images: Images | None = None, journal: Journal | None = None,
                  on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Every (item, variant) job, `workers` at a time; outcomes in input order, then variant order."""
    jobs = [(item, variant) for item in items for variant in variants]
    results: list[Outcome | None] = [None] * len(jobs)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for position, (item, variant) in enumerate(jobs):
        previous = journal.done.get(f"{item.index}:{variant.name}:{item.digest}") if journal else None
        if previous is not None:
            results[position] = previous
            if on_done:
                on_done(previous)
        else:
            queue.put_nowait(position)

    async def worker() -> None:
        while not queue.empty():
            position = queue.get_nowait()
            item, variant = jobs[position]
            frames = await asyncio.to_thread(images, item) if images else ()
            outcome = await caption_item(item, variant, max_rounds, frames)
            results[position] = outcome
            if journal is not None:
                journal.add(outcome)
            if on_done:
                on_done(outcome)

    await asyncio.gather(*(worker() for _ in range(max(1, min(workers, queue.qsize())))))
    return [r for r in results if r is not None]
