"""Caption reward (spec section 6): 0.5 * (judge - 1) / 4 + 0.5 * max(0, cosine), in [0, 1].

Without a usable judge (None, disabled, or failed after retries) the reward is the similarity
alone, max(0, cosine), and `judge_ok` is False. A prediction flagged as a judge injection gets the
judge minimum (1) without being sent. An empty prediction scores 0 and calls nothing.

Judged caption scores are also kept in the judge's SQLite cache under a key that adds the similarity
model, so a rerun or resumed run pays neither the judge nor the embedding again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from reward_fns.judge.cache import cache_key
from reward_fns.judge.client import JudgeResult, MedicalJudge
from reward_fns.judge.tally import current_tally
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

    def __init__(self, judge: MedicalJudge | None, similarity: SimilarityService, similarity_model: str = "minilm"):
        self.judge = judge
        self.similarity = similarity
        self.similarity_model = similarity_model

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
        key = cache_key(f"caption|{self.judge.config.model}|{self.similarity_model}", reference, prediction)
        cache = self.judge.cache
        cached = cache.lookup(key) if cache is not None else None
        if isinstance(cached, dict):
            try:
                hit = dataclasses.replace(CaptionScore(**cached), judge_cached=True)
            except TypeError:
                pass  # an entry from another version: score afresh
            else:
                if (tally := current_tally()) is not None:
                    tally.cache_hits += 1
                return hit
        judged, cosine = await asyncio.gather(  # one cache read per caption: the judge skips its own
            self.judge.score(reference, prediction, read_cache=False),
            self.similarity.cosine(prediction, reference))
        result = _from_judgement(judged, cosine)
        if result.judge_ok and cache is not None:
            await cache.store(key, dataclasses.asdict(result))
        return result


def _from_judgement(judged: JudgeResult, cosine: float) -> CaptionScore:
    if judged.injection:
        return CaptionScore(combine(1.0, cosine), cosine, 1.0, True, injection=True, reason=judged.reason)
    if not judged.ok or judged.score is None:
        return CaptionScore(combine(None, cosine), cosine, None, False, judged.cached,
                            reason=f"judge failed, similarity only: {judged.reason}")
    return CaptionScore(combine(judged.score, cosine), cosine, judged.score, True, judged.cached,
                        reason=judged.reason)
