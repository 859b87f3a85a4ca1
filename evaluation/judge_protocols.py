"""The two judge protocols of `evaluation.score_submission --judge openai` (`--judge-protocol`).

- `leaderboard` (default): the public leaderboard's protocol (spec 5a), see `LeaderboardProtocol`.
  Its columns are `dvc_llm`, `vs_llm`, `rc_llm`: the same numbers as the leaderboard for the same
  judge replies.
- `medgrpo`: the project's own medical judge (the training reward's prompt, injection guard and
  cache), per record like the reward; its columns are `dvc_medjudge`, `vs_medjudge`, `rc_medjudge`
  and the `*_llm` columns stay null, so nobody mistakes them for leaderboard numbers.

Both use `reward_fns.judge.chat.ChatClient` (bounded concurrency per event loop) and the judge's
SQLite cache (`cache_path` of the judge config; the two protocols' keys never collide).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from evaluation.caption_columns import CaptionColumns
from evaluation.fidelity import JUDGE_DEVIATIONS
from evaluation.leaderboard_judge import (
    ASPECTS,
    CALL_SETTINGS,
    THRESHOLDS,
    AspectScores,
    PromptBuilder,
    Span,
    dvc_overall,
    dvc_pairs,
    dvc_source_score,
    load_prompt_builder,
    parse_reply,
    pooled_score,
    retry_wait_s,
)
from reward_fns.judge.cache import JudgeCache
from reward_fns.judge.chat import ChatClient, ChatError
from reward_fns.judge.client import JudgeConfig
from reward_fns.judge.tally import TokenCounts
from reward_fns.reference import Reference
from reward_fns.registry import Parsed, get_task, task_for_qa_type
from reward_fns.tasks.dvc_parse import gt_segments, parse_events

logger = logging.getLogger(__name__)
LEADERBOARD_MODEL = "gpt-4.1"
_CACHE_NAMESPACE = "leaderboard-5a"


@dataclass
class JudgeTotals(TokenCounts):
    """What the protocol's judging took (reported under `counts.judge` of metrics.json). `requests`:
    distinct prompts (a DVC pair matched at several thresholds is asked once)."""

    vs_pairs: int = 0
    rc_pairs: int = 0
    dvc_pairs: int = 0
    judged: int = 0
    dropped: int = 0  # every attempt failed: left out, never scored 0
    http_attempts: int = 0


def _dvc_spans(answer: str) -> list[Span]:
    """Predicted events as the leaderboard reads them for judging: no overlap splitting; captions of
    header entries have newlines turned into spaces, fallback captions lose trailing dots."""
    events, kind = parse_events(answer)
    if kind == "header":
        return [Span(e.start, e.end, e.caption.strip().replace("\n", " ")) for e in events]
    return [Span(e.start, e.end, e.caption.strip().rstrip(".")) for e in events]


@dataclass
class _Plan:
    """Every pair to judge, by column: VS/RC pooled lists and DVC per (source, threshold)."""

    pooled: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {"VS": [], "RC": []})
    pooled_sources: dict[str, list[str]] = field(default_factory=lambda: {"VS": [], "RC": []})
    dvc: dict[str, dict[float, list[tuple[str, str]]]] = field(default_factory=dict)
    dvc_records: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def plan_pairs(refs: Sequence[Reference], predictions: Sequence[str]) -> _Plan:
    """5a's pairing: VS/RC pairs where both texts are non-empty strings (whitespace counts as text);
    DVC pairs per data_source and threshold, in seconds, from unsplit events."""
    plan = _Plan()
    for ref, pred in zip(refs, predictions, strict=True):
        task = task_for_qa_type(ref.qa_type).name
        if task in plan.pooled and isinstance(pred, str) and pred and ref.answer:
            plan.pooled[task].append((pred, ref.answer))
            plan.pooled_sources[task].append(ref.data_source)
        if task != "DVC":
            continue
        plan.dvc_records[ref.data_source] += 1
        by_threshold = plan.dvc.setdefault(ref.data_source, {t: [] for t in THRESHOLDS})
        pred_spans = _dvc_spans(pred) if isinstance(pred, str) else []
        gt = [Span(s.start, s.end, s.caption) for s in gt_segments(ref.struc_info)]
        if pred_spans and gt:
            for t in THRESHOLDS:
                by_threshold[t].extend(dvc_pairs(pred_spans, gt, t))
    return plan


class LeaderboardProtocol:
    """Spec 5a: the public scorer's prompt (one user message), temperature 0, no max_tokens, 30 s per
    attempt, 5 attempts with its waits (1, 2, 4, 8 s; 4, 8, 16, 32 s after a rate limit); a reply
    lacking an aspect is a failed attempt; a pair whose attempts all fail is left out."""

    name = "leaderboard"
    scale = "judge_1_5"
    suffix = "_llm"

    def __init__(self, prompt: PromptBuilder, client: ChatClient, model: str = LEADERBOARD_MODEL,
                 cache: JudgeCache | None = None, wait_scale: float = 1.0):
        self.prompt, self.client, self.model, self.cache = prompt, client, model, cache
        self.wait_scale = wait_scale  # tests shorten the waits; the attempt count never changes
        self.totals = JudgeTotals()
        self._loop_slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def settings(self) -> dict[str, Any]:
        """What metrics.json records under `settings.judge`."""
        return {"judge_protocol": self.name, "model": self.model, **CALL_SETTINGS,
                "prompt_source": self.prompt.source, "prompt_sha256": self.prompt.sha256,
                "comparable_to_leaderboard": self.model == LEADERBOARD_MODEL,
                "deviations": list(JUDGE_DEVIATIONS.values())}

    def _cache_key(self, prompt: str) -> str:
        payload = json.dumps([_CACHE_NAMESPACE, self.model, prompt], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    async def ask(self, prompt: str) -> AspectScores | None:
        """The five aspect scores for one prompt, or None when all attempts failed."""
        key = self._cache_key(prompt)
        hit = self.cache.lookup(key) if self.cache is not None else None
        scores = hit.get("scores") if isinstance(hit, dict) else None
        if isinstance(scores, dict) and all(isinstance(scores.get(a), int) for a in ASPECTS):
            self.totals.cache_hits += 1
            return {a: scores[a] for a in ASPECTS}
        attempts = int(CALL_SETTINGS["attempts"])  # type: ignore[call-overload]
        for attempt in range(attempts):
            rate_limited = False
            try:
                async with self._slots():  # queue here, so the client's deadline covers the attempt only
                    done = await self.client.complete([{"role": "user", "content": prompt}], model=self.model,
                                                      temperature=0.0, max_tokens=openai.omit)  # type: ignore[arg-type]
                self._count(done.attempts, done.usage)
                parsed, _ = parse_reply(done.text)
            except ChatError as err:
                self._count(err.attempts, err.usage)
                parsed, rate_limited = None, "HTTP 429" in err.reason
            if parsed is not None:
                if self.cache is not None:
                    await self.cache.store(key, {"scores": dict(parsed)})
                return parsed
            if attempt < attempts - 1:
                await asyncio.sleep(retry_wait_s(attempt, rate_limited) * self.wait_scale)
        return None

    def _prompt(self, prediction: str, reference: str, task: str) -> str | None:
        """The public prompt, or None when the user's prompt function fails on this pair (the public
        scorer builds it inside its try block, so the pair is left out there too)."""
        try:
            prompt = self.prompt(prediction, reference, get_task(task).stem)
        except Exception as err:  # a third-party function: any failure drops the pair, never the run
            logger.warning("leaderboard prompt failed for a %s pair (%s); pair left out", task, err)
            return None
        return prompt if isinstance(prompt, str) else None

    def _slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop_slots is None or self._loop_slots[0] is not loop:
            self._loop_slots = (loop, asyncio.Semaphore(self.client.concurrency))
        return self._loop_slots[1]

    def _count(self, attempts: int, usage: Any) -> None:
        self.totals.http_attempts += attempts
        self.totals.add_usage(usage)

    async def _judge_all(self, jobs: Mapping[str, None]) -> dict[str, AspectScores | None]:
        try:
            results = await asyncio.gather(*(self.ask(p) for p in jobs))
        finally:
            await self.client.aclose()
        return dict(zip(jobs, results, strict=True))

    def caption_columns(self, refs: Sequence[Reference], predictions: Sequence[str],
                        parsed: Sequence[Parsed] | None = None) -> CaptionColumns:
        """`dvc_llm`, `vs_llm`, `rc_llm` exactly as the leaderboard aggregates them (from the raw
        predictions: DVC events are paired in seconds without overlap splitting, so `parsed` is unused)."""
        plan = plan_pairs(refs, predictions)
        prompts: dict[tuple[str, str, str], str | None] = {}
        for task, pairs in plan.pooled.items():
            for pred, gt in pairs:
                prompts[(pred, gt, task)] = self._prompt(pred, gt, task)
        for by_threshold in plan.dvc.values():
            for pairs in by_threshold.values():
                for pred, gt in pairs:
                    prompts[(pred, gt, "DVC")] = self._prompt(pred, gt, "DVC")
        jobs = dict.fromkeys(p for p in prompts.values() if p is not None)
        replies: dict[str | None, AspectScores | None] = {None: None}
        replies.update(asyncio.run(self._judge_all(jobs)) if jobs else {})
        t = self.totals
        t.requests, t.judged = len(jobs), sum(r is not None for r in replies.values())
        t.dropped = len(set(prompts.values())) - t.judged

        def judged(pairs: Sequence[tuple[str, str]], task: str) -> list[AspectScores]:
            found = [replies[prompts[(pred, gt, task)]] for pred, gt in pairs]
            return [r for r in found if r is not None]

        columns: dict[str, float | None] = {}
        per_source: dict[str, dict[str, float]] = defaultdict(dict)
        for task, key in (("VS", "vs_llm"), ("RC", "rc_llm")):
            pairs = plan.pooled[task]
            columns[key] = pooled_score(judged(pairs, task))
            for source in sorted(set(plan.pooled_sources[task])):
                mine = [p for p, s in zip(pairs, plan.pooled_sources[task], strict=True) if s == source]
                value = pooled_score(judged(mine, task))
                if value is not None:
                    per_source[source][key] = value
        dvc_scores = {
            source: dvc_source_score({th: judged(pairs, "DVC") for th, pairs in by_threshold.items()})
            for source, by_threshold in plan.dvc.items()
        }
        for source, value in dvc_scores.items():
            per_source[source]["dvc_llm"] = value
        columns["dvc_llm"] = dvc_overall(dvc_scores, plan.dvc_records)
        t.vs_pairs, t.rc_pairs = len(plan.pooled["VS"]), len(plan.pooled["RC"])
        t.dvc_pairs = sum(len(p) for by_t in plan.dvc.values() for p in by_t.values())
        return CaptionColumns(columns, dict(per_source), t)


def make_leaderboard_protocol(config: JudgeConfig, leaderboard_dir: str) -> LeaderboardProtocol:
    """From the judge config: endpoint, key variable, model, concurrency and cache; the call
    settings (30 s per attempt, 5 attempts, temperature 0, no max_tokens) are the protocol's own."""
    timeout = float(CALL_SETTINGS["timeout_s"])  # type: ignore[arg-type]
    client = ChatClient(config.base_url, api_key_env=config.api_key_env, concurrency=config.concurrency,
                        timeout_s=timeout, deadline_s=timeout + 5.0, max_retries=0)
    cache = JudgeCache(config.cache_path) if config.cache_path else None
    return LeaderboardProtocol(load_prompt_builder(leaderboard_dir), client, config.model, cache)
