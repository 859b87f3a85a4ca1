"""VS and RC: free-text captions judged against the reference caption (LLM judge + similarity)."""

from __future__ import annotations

from collections.abc import Sequence

from reward_fns.reference import Reference
from reward_fns.registry import CaptionPair, Column, Parsed, SampleResult, ScoredCaption, Task, register_task
from reward_fns.tasks.common import clip01, text_of, unparsed


def parse_caption(answer: object) -> Parsed[str]:
    """The stripped caption; an empty answer is unparsed."""
    text = text_of(answer).strip()
    return Parsed(text, ok=True) if text else unparsed("empty answer", "")


def caption_pairs(parsed: Parsed[str], ref: Reference) -> list[CaptionPair]:
    """One pair: the whole prediction against the whole reference answer."""
    return [CaptionPair(parsed.value or "", ref.answer.strip(), group="caption")]


def evaluate(parsed: Parsed[str], ref: Reference, strict: bool = False) -> SampleResult:
    """The rule part is empty: these columns come from the judge (or the similarity fallback)."""
    return SampleResult(counted=True, reason=parsed.reason)


def reward(parsed: Parsed[str], ref: Reference, captions: Sequence[ScoredCaption] = ()) -> float:
    """The caption reward of the single pair (0 for an empty answer)."""
    if not parsed.ok or not captions:
        return 0.0
    return clip01(captions[0].score)


VS = register_task(Task(
    name="VS", stem="video_summary", captioned=True,
    parse=parse_caption, evaluate=evaluate, reward=reward, caption_pairs=caption_pairs,
    columns=(Column("vs_llm", "VS llm", "mean_caption", "pooled", paper=(3.596, 4.184), judged=True),),
))
RC = register_task(Task(
    name="RC", stem="region_caption", captioned=True,
    parse=parse_caption, evaluate=evaluate, reward=reward, caption_pairs=caption_pairs,
    columns=(Column("rc_llm", "RC llm", "mean_caption", "pooled", paper=(2.757, 3.442), judged=True),),
))
