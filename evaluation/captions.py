"""Caption columns (DVC llm, VS llm, RC llm): LLM judge (1-5) or the MiniLM similarity fallback (0-1)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from reward_fns.registry import CaptionPair
from reward_fns.similarity import SimilarityService


class CaptionBackend(Protocol):
    """Scores caption pairs; `scale` names the range reported ('judge_1_5' or 'cosine_0_1')."""

    scale: str

    def score_pairs(self, pairs: Sequence[CaptionPair]) -> list[float | None]: ...


class SimilarityBackend:
    """all-MiniLM-L6-v2 cosine between whole texts (the public scorer's no-judge fallback)."""

    scale = "cosine_0_1"

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
def _similarity(judge_config: str | None = None, similarity: SimilarityService | None = None) -> CaptionBackend:
    return SimilarityBackend(similarity or SimilarityService())


class JudgeBackend:
    """The medical LLM judge (1-5) over an OpenAI-compatible endpoint; failed judgements are None."""

    scale = "judge_1_5"

    def __init__(self, judge: Any):
        self._judge = judge

    def score_pairs(self, pairs: Sequence[CaptionPair]) -> list[float | None]:
        async def run() -> list[float | None]:
            try:
                results = await asyncio.gather(*(self._judge.score(p.reference, p.prediction) for p in pairs))
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


@register_backend("openai")
def _openai(judge_config: str | None = None, similarity: SimilarityService | None = None) -> CaptionBackend:
    from reward_fns.judge.client import JudgeConfig, MedicalJudge

    if not judge_config:
        raise JudgeNotConfigured("--judge openai needs --judge-config FILE (base_url, model, api_key_env, ...)")
    try:
        config = JudgeConfig.from_dict({**load_judge_config(judge_config), "enabled": True})
    except (TypeError, ValueError) as err:
        raise JudgeNotConfigured(f"{judge_config}: {err}") from None
    return JudgeBackend(MedicalJudge(config))


def make_backend(name: str, judge_config: str | None = None,
                 similarity: SimilarityService | None = None) -> CaptionBackend | None:
    """The caption backend for `--judge NAME` (None for 'none'); `similarity` is the CLI's one service."""
    if name == "none":
        return None
    if name not in BACKENDS:
        raise ValueError(f"unknown judge {name!r}; choose none, {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](judge_config, similarity=similarity)
