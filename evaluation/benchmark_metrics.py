"""Score predictions against MedVidBench records with the shared task registry."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evaluation.aggregate import ScoredSample, aggregate
from evaluation.caption_columns import CaptionBackend, CaptionColumns
from evaluation.join import NonStringPrediction
from reward_fns.reference import RecordError, Reference, reference_from_record
from reward_fns.registry import Parsed, Task, all_columns, task_for_qa_type
from reward_fns.similarity import SimilarityService
from reward_fns.tasks import nap


@dataclass
class ScoreReport:
    """The benchmark's columns plus breakdowns."""

    columns: dict[str, float | None]
    per_source: dict[str, dict[str, float]]
    counts: dict[str, dict[str, int]]
    caption_scale: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**self.columns, "per_source": self.per_source, "counts": self.counts,
                "caption_scale": self.caption_scale, "settings": self.settings}


def build_references(records: Sequence[Mapping[str, Any]], where: str = "") -> list[Reference]:
    """References with NAP class lists resolved against the whole file (EgoSurgery needs its answers)."""
    nap_answers: dict[str, list[str]] = defaultdict(list)
    base = [reference_from_record(r, i, where) for i, r in enumerate(records)]
    for i, ref in enumerate(base):
        try:
            task = task_for_qa_type(ref.qa_type)
        except KeyError as err:
            raise RecordError(i, "qa_type", str(err.args[0]), where) from None
        _check_ground_truth(task, ref, i, where)
        if ref.qa_type == "next_action":
            nap_answers[ref.data_source].append(ref.answer)
    return [
        dataclasses.replace(ref, nap_classes=nap.resolve_nap_classes(
            ref.data_source, ref.question, nap_answers[ref.data_source]))
        if ref.qa_type == "next_action" else ref
        for ref in base
    ]


def _check_ground_truth(task: Task, ref: Reference, index: int, where: str) -> None:
    """Read the record's structured ground truth once, so a malformed one is a RecordError, not a traceback."""
    if task.gt_problem is None:
        return
    try:
        task.gt_problem(ref)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        raise RecordError(index, "struc_info", f"malformed {task.name} ground truth: {detail}", where) from None


def score(
    refs: Sequence[Reference],
    predictions: Sequence[str],
    strict: bool = False,
    captions: CaptionBackend | None = None,
    similarity: SimilarityService | None = None,
) -> ScoreReport:
    """Evaluate every record; `predictions[i]` answers `refs[i]` (see `build_references`).

    `similarity` snaps off-list NAP answers (a fresh service, loading MiniLM lazily, when None).
    """
    tasks = [task_for_qa_type(ref.qa_type) for ref in refs]
    parsed = [t.parse(p) for t, p in zip(tasks, predictions, strict=True)]
    parsed = asyncio.run(_resolve(tasks, parsed, refs, similarity or SimilarityService()))
    results = [t.evaluate(p, r, strict) for t, p, r in zip(tasks, parsed, refs, strict=True)]
    samples = [ScoredSample(i, t.name, r.data_source, res, p.ok)
               for i, (t, p, r, res) in enumerate(zip(tasks, parsed, refs, results, strict=True))]
    counts = _counts(samples, predictions)
    caption = captions.caption_columns(refs, predictions, parsed) if captions is not None else None
    if caption is not None and caption.totals is not None:
        counts["judge"] = dataclasses.asdict(caption.totals)
    columns, per_source = _columns(*aggregate(samples, judged=False), caption, captions.suffix if captions else "")
    return ScoreReport(columns, per_source, counts, captions.scale if captions else None)


async def _resolve(tasks: Sequence[Task], parsed: Sequence[Parsed], refs: Sequence[Reference],
                   similarity: SimilarityService) -> list[Parsed]:
    """Run the async resolve step (NAP snapping) of the records that have one, concurrently, so the
    similarity service batches them."""
    out = list(parsed)
    todo = [(i, t.resolve) for i, t in enumerate(tasks) if t.resolve is not None]
    resolved = await asyncio.gather(*(resolve(parsed[i], refs[i], similarity) for i, resolve in todo))
    for (i, _), value in zip(todo, resolved, strict=True):
        out[i] = value
    return out


Columns = dict[str, float | None]
PerSource = dict[str, dict[str, float]]


def _columns(rules: Columns, rule_per_source: PerSource, caption: CaptionColumns | None,
             suffix: str) -> tuple[Columns, PerSource]:
    """Every column in the paper's order. Judged columns are `*_llm` only under the leaderboard's judge
    protocol (`suffix` `_llm`); another backend's follow as `*<suffix>` (similarity `*_sim`, the project's
    judge `*_medjudge`) with `*_llm` null; without captions they are null. Per source: the rule columns,
    then the backend's."""
    found = caption.columns if caption is not None else {}
    judged = [c for c in all_columns() if c.judged]
    columns = {c.key: (found.get(c.key) if suffix == "_llm" else None) if c.judged else rules[c.key]
               for c in all_columns()}
    if caption is not None and suffix != "_llm":
        columns.update({c.key_for(suffix): found.get(c.key) for c in judged})
    per_source = {source: dict(values) for source, values in rule_per_source.items()}
    for source, values in (caption.per_source if caption is not None else {}).items():
        per_source.setdefault(source, {}).update({c.key_for(suffix): values[c.key] for c in judged if c.key in values})
    return columns, dict(sorted(per_source.items()))


def _counts(samples: Sequence[ScoredSample], predictions: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per task: records, counted (the leaderboard includes them), unparsable answers, and non_string
    predictions read as empty answers under `--lenient`."""
    counts: dict[str, dict[str, int]] = {}
    for s in samples:
        c = counts.setdefault(s.task, {"records": 0, "counted": 0, "unparsable": 0, "non_string": 0})
        c["records"] += 1
        c["counted"] += int(s.result.counted)
        c["unparsable"] += int(not s.parse_ok)
        c["non_string"] += int(isinstance(predictions[s.index], NonStringPrediction))
    return dict(sorted(counts.items()))
