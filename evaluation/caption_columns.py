"""Caption columns (DVC llm, VS llm, RC llm): LLM judge (1-5) or the MiniLM similarity fallback (0-1).

Every backend gives the scorer its columns through one method, `caption_columns(refs, predictions,
parsed)`. Its `suffix` names them: `_llm` only for the leaderboard's judge protocol (which pairs and
aggregates as the public scorer does, `evaluation.judge_protocols`), `_sim` for similarity, `_medjudge`
for the project's own judge (`--judge-protocol medgrpo`); those two score each record's caption pairs
(`PairBackend`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from evaluation.aggregate import ScoredSample, aggregate
from reward_fns.reference import Reference
from reward_fns.registry import CaptionPair, Parsed, SampleResult, task_for_qa_type
from reward_fns.similarity import SimilarityService
from reward_fns.tasks.common import group_mean


@dataclass
class CaptionColumns:
    """A backend's judged columns by their `*_llm` key (over all records), per-source values, and what
    judging took (a dataclass, reported under `counts.judge` of metrics.json; None: nothing to report)."""

    columns: dict[str, float | None]
    per_source: dict[str, dict[str, float]]
    totals: Any = None


class CaptionBackend(Protocol):
    """`scale` names the range reported ('judge_1_5' or 'cosine_0_1'), `suffix` the columns' names."""

    scale: str
    suffix: str

    def caption_columns(self, refs: Sequence[Reference], predictions: Sequence[str],
                        parsed: Sequence[Parsed] | None = None) -> CaptionColumns: ...


def _caption_score(pairs: list[CaptionPair], scores: list[float | None]) -> float | None:
    """Mean per pair group (DVC: per IoU threshold), then over groups; failed judgements left out."""
    kept = [(p.group, s) for p, s in zip(pairs, scores, strict=True) if s is not None]
    return group_mean([g for g, _ in kept], [s for _, s in kept])


class PairBackend:
    """A backend that scores each record's caption pairs (`Task.caption_pairs` of its parsed answer);
    a record's caption score is `_caption_score` of its pairs, and the columns aggregate the records as
    their `Column` says (`evaluation.aggregate`)."""

    scale = suffix = ""

    def score_pairs(self, pairs: Sequence[CaptionPair]) -> list[float | None]:
        raise NotImplementedError

    def caption_columns(self, refs: Sequence[Reference], predictions: Sequence[str],
                        parsed: Sequence[Parsed] | None = None) -> CaptionColumns:
        tasks = [task_for_qa_type(ref.qa_type) for ref in refs]
        if parsed is None:
            parsed = [task.parse(text) for task, text in zip(tasks, predictions, strict=True)]
        jobs = [(i, t.caption_pairs(p, r)) for i, (t, p, r) in enumerate(zip(tasks, parsed, refs, strict=True))
                if p.ok]
        scores = self.score_pairs([pair for _, pairs in jobs for pair in pairs])
        per_record, at = {}, 0
        for i, pairs in jobs:
            if pairs:
                per_record[i] = _caption_score(pairs, scores[at: at + len(pairs)])
            at += len(pairs)
        samples = [ScoredSample(i, t.name, r.data_source, SampleResult(counted=True), p.ok, per_record.get(i))
                   for i, (t, p, r) in enumerate(zip(tasks, parsed, refs, strict=True))]
        return CaptionColumns(*aggregate(samples, judged=True))


class SimilarityBackend(PairBackend):
    """all-MiniLM-L6-v2 cosine between whole texts (the public scorer's no-judge fallback)."""

    scale = "cosine_0_1"
    suffix = "_sim"

    def __init__(self, similarity: SimilarityService):
        self._similarity = similarity

    def score_pairs(self, pairs: Sequence[CaptionPair]) -> list[float | None]:
        if not pairs:
            return []
        return list(asyncio.run(self._similarity.cosines([(p.prediction, p.reference) for p in pairs])))


class JudgeNotConfigured(RuntimeError):
    """`--judge openai` was asked for without a usable judge configuration."""


BACKENDS: dict[str, Callable[..., CaptionBackend]] = {}


def register_backend(name: str) -> Callable[[Callable[..., CaptionBackend]], Callable[..., CaptionBackend]]:
    def wrap(factory: Callable[..., CaptionBackend]) -> Callable[..., CaptionBackend]:
        BACKENDS[name] = factory
        return factory
    return wrap


@register_backend("similarity")
def _similarity(judge_config: str | None = None, similarity: SimilarityService | None = None,
                **judge_options: Any) -> CaptionBackend:
    return SimilarityBackend(similarity or SimilarityService())


class JudgeBackend(PairBackend):
    """The project's medical LLM judge (1-5; the training reward's prompt, injection guard and cache)
    over an OpenAI-compatible endpoint, per record; failed judgements are None. Its columns are
    `*_medjudge`: not the leaderboard's protocol, so never reported as `*_llm`."""

    scale = "judge_1_5"
    suffix = "_medjudge"

    def __init__(self, judge: Any):
        self._judge = judge

    def settings(self) -> dict[str, Any]:
        """What metrics.json records under `settings.judge_settings`."""
        from reward_fns.judge.prompt import PROMPT_VERSION

        cfg = self._judge.config
        return {"judge_protocol": "medgrpo", "model": cfg.model, "temperature": cfg.temperature,
                "max_tokens": cfg.max_tokens, "prompt_version": PROMPT_VERSION, "comparable_to_leaderboard": False}

    def score_pairs(self, pairs: Sequence[CaptionPair]) -> list[float | None]:
        async def run() -> list[float | None]:
            # queue here: the client's deadline would otherwise count the wait for a slot, and a large
            # file would fail its last pairs without ever sending them
            slots = asyncio.Semaphore(self._judge.config.concurrency)

            async def one(pair: CaptionPair) -> Any:
                async with slots:
                    return await self._judge.score(pair.reference, pair.prediction)

            try:
                results = await asyncio.gather(*(one(p) for p in pairs))
            finally:
                await self._judge.aclose()
            return [r.score if r.ok else None for r in results]

        return asyncio.run(run()) if pairs else []


def load_judge_config(path: str) -> dict[str, Any]:
    """JudgeConfig keys from YAML/JSON: top level, or under `judge:` / `medgrpo.reward.judge`."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for key in ("medgrpo", "reward", "judge"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise JudgeNotConfigured(f"{path}: expected a mapping of judge settings")
    return data


def _medgrpo_protocol(config: Any, leaderboard_dir: str | None) -> CaptionBackend:
    from reward_fns.judge.client import MedicalJudge

    return JudgeBackend(MedicalJudge(config))


def _leaderboard_protocol(config: Any, leaderboard_dir: str | None) -> CaptionBackend:
    from evaluation.judge_protocols import make_leaderboard_protocol
    from evaluation.leaderboard_judge import LeaderboardDirError

    if not leaderboard_dir:
        raise JudgeNotConfigured(
            "--judge-protocol leaderboard (the default) needs --leaderboard-dir DIR: your local copy of the "
            "public MedVidBench leaderboard scorer (its evaluation folder holds eval_caption_llm_judge.py, "
            "whose prompt is read at run time and never shipped); or use --judge-protocol medgrpo")
    try:
        return make_leaderboard_protocol(config, leaderboard_dir)
    except LeaderboardDirError as err:
        raise JudgeNotConfigured(str(err)) from None


JUDGE_PROTOCOLS: dict[str, Callable[[Any, str | None], CaptionBackend]] = {
    "leaderboard": _leaderboard_protocol, "medgrpo": _medgrpo_protocol}


@register_backend("openai")
def _openai(judge_config: str | None = None, similarity: SimilarityService | None = None,
            protocol: str = "leaderboard", leaderboard_dir: str | None = None) -> CaptionBackend:
    from reward_fns.judge.client import JudgeConfig

    if not judge_config:
        raise JudgeNotConfigured("--judge openai needs --judge-config FILE (base_url, model, api_key_env, ...)")
    if protocol not in JUDGE_PROTOCOLS:
        raise JudgeNotConfigured(f"unknown judge protocol {protocol!r}; choose {', '.join(JUDGE_PROTOCOLS)}")
    try:
        config = JudgeConfig.from_dict({**load_judge_config(judge_config), "enabled": True})
    except (TypeError, ValueError) as err:
        raise JudgeNotConfigured(f"{judge_config}: {err}") from None
    return JUDGE_PROTOCOLS[protocol](config, leaderboard_dir)


def make_backend(name: str, judge_config: str | None = None, similarity: SimilarityService | None = None,
                 protocol: str = "leaderboard", leaderboard_dir: str | None = None) -> CaptionBackend | None:
    """The caption backend for `--judge NAME` (None for 'none'); `similarity` is the CLI's one service;
    `protocol` / `leaderboard_dir` choose the judge protocol of `--judge openai`."""
    if name == "none":
        return None
    if name not in BACKENDS:
        raise ValueError(f"unknown judge {name!r}; choose none, {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](judge_config, similarity=similarity, protocol=protocol, leaderboard_dir=leaderboard_dir)
