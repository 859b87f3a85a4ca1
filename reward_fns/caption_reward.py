"""Caption reward (spec section 6): 0.5 * (judge - 1) / 4 + 0.5 * max(0, cosine), in [0, 1].

Without a usable judge (None, disabled, or failed after retries) the reward is the similarity
alone, max(0, cosine), and `judge_ok` is False. A prediction flagged as a judge injection gets the
judge minimum (1) without being sent. An empty prediction scores 0 and calls nothing.

The judge's own SQLite cache (reward_fns/judge/client.py) is the one cache: a rerun or resumed run does
not pay the judge again (the similarity service embeds the texts again, in its batches).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from reward_fns.judge.client import JudgeResult, MedicalJudge
from reward_fns.similarity import SimilarityService


@dataclass(frozen=True)
class CaptionScore:
    """One caption's reward and how it was made (for the reward manager's per-sample log)."""

    reward: float
    similarity: float
    judge_score: float | None
    judge_ok: bool
    judge_cached: bool = False
    injection: bool = False
    reason: str = ""


def combine(judge_score: float | None, cosine: float) -> float:
    """The caption reward from a 1-5 judge score (or None) and a cosine similarity."""
    sim = min(1.0, max(0.0, cosine))
    if judge_score is None:
        return sim
    judge_part = (min(5.0, max(1.0, judge_score)) - 1.0) / 4.0
    return min(1.0, max(0.0, 0.5 * judge_part + 0.5 * sim))


class CaptionScorer:
    """Scores a predicted caption against its reference with the judge and MiniLM similarity."""

    def __init__(self, judge: MedicalJudge | None, similarity: SimilarityService):
        self.judge = judge
        self.similarity = similarity

    @property
    def judge_enabled(self) -> bool:
        return self.judge is not None and self.judge.config.enabled

    async def score(self, reference: str, prediction: str) -> CaptionScore:
        """Judge and embed concurrently, then combine; never raises on judge trouble."""
        if not prediction.strip():
            return CaptionScore(0.0, 0.0, None, False, reason="empty prediction")
        if not self.judge_enabled:
            cosine = await self.similarity.cosine(prediction, reference)
            return CaptionScore(combine(None, cosine), cosine, None, False, reason="judge disabled")
        assert self.judge is not None
        judged, cosine = await asyncio.gather(self.judge.score(reference, prediction),
                                              self.similarity.cosine(prediction, reference))
        return _from_judgement(judged, cosine)


def _from_judgement(judged: JudgeResult, cosine: float) -> CaptionScore:
    if judged.injection:
        return CaptionScore(combine(1.0, cosine), cosine, 1.0, True, injection=True, reason=judged.reason)
    if not judged.ok or judged.score is None:
        return CaptionScore(combine(None, cosine), cosine, None, False, judged.cached,
                            reason=f"judge failed, similarity only: {judged.reason}")
    return CaptionScore(combine(judged.score, cosine), cosine, judged.score, True, judged.cached,
                        reason=judged.reason)
