"""From one model answer to a raw and a normalized reward, with everything worth logging.

Pure routing over the task registry plus the caption scorer and the normalizer; no verl import, so
the calibration CLI, the demo, the benchmark and the verl reward manager share it.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from reward_fns.caption_reward import CaptionScore, CaptionScorer
from reward_fns.normalize import LogisticNormalizer
from reward_fns.reference import Reference
from reward_fns.registry import SOURCES, TASK_NAMES, CaptionPair, ScoredCaption, task_for_qa_type
from reward_fns.similarity import SimilarityService

TASK_IDS = {name: i for i, name in enumerate(TASK_NAMES)}
SOURCE_IDS = {name: i for i, name in enumerate(SOURCES)}
NUMERIC_KEYS = ("acc", "raw", "normalized", "parse_ok", "judge_ok", "judge_cached", "injection_flag",
                "task_enabled", "caption_pairs", "task_id", "source_id")


@dataclass(frozen=True)
class RewardOutcome:
    """One scored answer. `extra_info()` gives the SAME keys for every task (verl groups by them)."""

    task: str
    source: str
    raw: float
    normalized: float
    parse_ok: bool
    judge_ok: bool = False
    judge_cached: bool = False
    injection: bool = False
    task_enabled: bool = True
    caption_pairs: int = 0
    reason: str = ""

    def extra_info(self) -> dict[str, Any]:
        return {
            "acc": self.raw, "raw": self.raw, "normalized": self.normalized,
            "parse_ok": int(self.parse_ok), "judge_ok": int(self.judge_ok),
            "judge_cached": int(self.judge_cached), "injection_flag": int(self.injection),
            "task_enabled": int(self.task_enabled), "caption_pairs": self.caption_pairs,
            "task_id": TASK_IDS.get(self.task, -1), "source_id": SOURCE_IDS.get(self.source, -1),
            "task": self.task, "source": self.source, "reason": self.reason,
        }


class RewardScorer:
    """Routes an answer to its task, scores captions, normalizes; never raises on model output.

    `similarity` is the one similarity service of the pipeline (NAP snapping; the caption scorer holds
    the same instance).
    """

    def __init__(self, tasks_enabled: dict[str, bool], normalizer: LogisticNormalizer | None,
                 captions: CaptionScorer | None, similarity: SimilarityService):
        self.tasks_enabled = tasks_enabled
        self.normalizer = normalizer
        self.captions = captions
        self.similarity = similarity

    async def score(self, response: str, ref: Reference) -> RewardOutcome:
        task = task_for_qa_type(ref.qa_type)
        if not self.tasks_enabled.get(task.name, True):
            return RewardOutcome(task.name, ref.data_source, 0.0, 0.0, parse_ok=True, task_enabled=False,
                                 reason="task reward switched off in medgrpo.reward.tasks")
        parsed = task.parse(response)
        if task.resolve is not None:
            parsed = await task.resolve(parsed, ref, self.similarity)
        pairs = task.caption_pairs(parsed, ref) if parsed.ok else []
        caption_scores = await self._caption_scores(pairs)
        scored = ([ScoredCaption(p, c.reward) for p, c in zip(pairs, caption_scores, strict=True)]
                  if caption_scores else [])  # no caption scorer: the reward sees no caption scores
        raw = task.reward(parsed, ref, scored)
        raw = raw if math.isfinite(raw) else 0.0
        normalized = self.normalizer.normalize(ref.data_source, task.name, raw) if self.normalizer else raw
        judged = [c for c in caption_scores if c.judge_ok]
        reasons = [parsed.reason] + [c.reason for c in caption_scores if c.reason and not c.judge_ok]
        return RewardOutcome(
            task.name, ref.data_source, raw, normalized, parsed.ok,
            judge_ok=bool(caption_scores) and len(judged) == len(caption_scores),
            judge_cached=bool(judged) and all(c.judge_cached for c in judged),
            injection=any(c.injection for c in caption_scores),
            caption_pairs=len(pairs),
            reason="; ".join(r for r in dict.fromkeys(reasons) if r),
        )

    async def _caption_scores(self, pairs: list[CaptionPair]) -> list[CaptionScore]:
        if not pairs or self.captions is None:
            return []
        unique = list(dict.fromkeys((p.reference, p.prediction) for p in pairs))
        scored = await asyncio.gather(*(self.captions.score(ref, pred) for ref, pred in unique))
        by_pair = dict(zip(unique, scored, strict=True))
        return [by_pair[(p.reference, p.prediction)] for p in pairs]
