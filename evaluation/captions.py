"""Caption columns (DVC llm, VS llm, RC llm): LLM judge (1-5) or the MiniLM similarity fallback (0-1)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from reward_fns.registry import CaptionPair


class CaptionBackend(Protocol):
    """Scores caption pairs; `scale` names the range reported ('judge_1_5' or 'cosine_0_1')."""

    scale: str

    def score_pairs(self, pairs: Sequence[CaptionPair]) -> list[float | None]: ...


class SimilarityBackend:
    """all-MiniLM-L6-v2 cosine between whole texts (the public scorer's no-judge fallback)."""

    scale = "cosine_0_1"

    def __init__(self, embedder: Any):
        self._embedder = embedder

    def score_pairs(self, pairs: Sequence[CaptionPair]) -> list[float | None]:
        if not pairs:
            return []
        sims = self._embedder.cosine([p.prediction for p in pairs], [p.reference for p in pairs])
        return [float(s) for s in sims]


class JudgeNotConfigured(RuntimeError):
    """`--judge openai` was asked for without a usable judge configuration."""


BACKENDS: dict[str, Callable[..., CaptionBackend]] = {}


def register_backend(name: str) -> Callable[[Callable[..., CaptionBackend]], Callable[..., CaptionBackend]]:
    def wrap(factory: Callable[..., CaptionBackend]) -> Callable[..., CaptionBackend]:
        BACKENDS[name] = factory
        return factory
    return wrap


@register_backend("similarity")
def _similarity(judge_config: str | None = None) -> CaptionBackend:
    from reward_fns.similarity import shared_embedder

    return SimilarityBackend(shared_embedder())


@register_backend("openai")
def _openai(judge_config: str | None = None) -> CaptionBackend:
    raise JudgeNotConfigured("the OpenAI-compatible judge backend is not configured yet; "
                             "use --judge none or --judge similarity")


def make_backend(name: str, judge_config: str | None = None) -> CaptionBackend | None:
    """The caption backend for `--judge NAME` (None for 'none')."""
    if name == "none":
        return None
    if name not in BACKENDS:
        raise ValueError(f"unknown judge {name!r}; choose none, {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](judge_config)
