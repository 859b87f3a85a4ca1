"""Expert-guided prompts for the caption writer (generator) and the caption reviewer (validator).

Both see the same structured facts, rendered by `facts_block`, with the source's glossary and the five
clinical dimensions the medical judge scores. The writer replies `{"captions": [...]}` (one caption
per segment for DVC, one text for VS and RC); the reviewer replies `{"accept": bool, "problems": [...]}`.
Change `PROMPT_VERSION` whenever the wording changes: it is part of every cache key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from data_preprocess.caption_writer.facts import CaptionFacts, FactsItem
from data_preprocess.caption_writer.glossary import Glossary, glossary_for

PROMPT_VERSION = "captions-v2"
Message = dict[str, Any]

DIMENSIONS = (
    "medical terminology: the correct clinical names of steps, instruments and structures",
    "instrument and anatomy identification: name each instrument and structure the facts give",
    "specificity: concrete detail (which instrument does what to which structure, when)",
    "clinical context: the step's purpose within the procedure",
    "action accuracy: actions and states exactly as annotated, in the annotated order",
)
TASK_BRIEFS = {
    "dvc": ("Write one caption per numbered segment, in the same order: one or two sentences saying what "
            "happens in that segment. Do not repeat the time span or the label; they are added for you."),
    "vs": ("Write one paragraph (3-6 sentences) summarising the whole clip in time order: the procedure, "
           "the steps, the instruments and the structures involved."),
    "rc": ("Write one or two sentences describing the object inside the box: what it is and what it is "
           "doing at that moment, as the question asks."),
}
GENERATOR_RULES = (
    "State only what the facts support. Never invent instruments, anatomy, findings, complications, "
    "counts or outcomes; if a detail is not in the facts, leave it out.",
    "Use precise clinical terminology from the glossary; write for clinicians, in plain sentences.",
    "No timestamps, no bullet points, no markdown, no line breaks inside a caption.",
)
_DETAIL_NAMES = {"triplets": "(instrument, verb, target) triplets"}
VALIDATOR_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "caption_review", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["accept", "problems"],
        "properties": {"accept": {"type": "boolean"}, "problems": {"type": "array", "items": {"type": "string"}}},
    }},
}


def expected_captions(facts: CaptionFacts) -> int:
    """How many captions the writer must return."""
    return len(facts.segments) if facts.task == "dvc" else 1


def generator_schema(n: int) -> dict[str, Any]:
    """The writer's `response_format`: `{"captions": [...]}` with exactly `n` strings (one for VS and RC,
    whose whole paragraph is one string), so a structured endpoint cannot return another count."""
    item = ({"type": "string", "description": "the whole text as one string (one paragraph)"} if n == 1
            else {"type": "string", "description": "the caption of one segment, in segment order"})
    return {"type": "json_schema", "json_schema": {"name": "captions", "strict": True, "schema": {
        "type": "object", "additionalProperties": False, "required": ["captions"],
        "properties": {"captions": {"type": "array", "items": item, "minItems": n, "maxItems": n}},
    }}}


def facts_block(item: FactsItem) -> str:
    """The item's facts as readable text (the same for writer and reviewer)."""
    facts, gloss = item.facts, glossary_for(item.facts.source)
    lines = [f"Source dataset: {facts.source}",
             f"Procedure: {facts.procedure or gloss.procedure}",
             f"Clip: {facts.clip_end - facts.clip_start:.1f} s long",
             f"Question asked about the clip: {item.question}"]
    if facts.segments:
        lines.append("Annotated segments (clip-relative seconds, time order):")
        lines.extend(f"  {i}. {_segment_line(seg, gloss)}" for i, seg in enumerate(facts.segments, 1))
    if facts.region is not None:
        r = facts.region
        size = f" on a {r.image_size[0]}x{r.image_size[1]} frame" if r.image_size else ""
        box = ", ".join(f"{v:.0f}" for v in r.bbox)
        lines.append(f"Boxed object: {gloss.readable(r.object)}, box [{box}] (pixels x1, y1, x2, y2){size} "
                     f"at {r.time:.1f} s")
        lines.extend(f"  during: {_segment_line(seg, gloss)}" for seg in facts.segments
                     if seg.start <= r.time <= seg.end)
    words = _fact_words(facts)
    terms = gloss.relevant_terms([*words, *(gloss.readable(w) for w in words)])
    if terms or gloss.notes:
        lines.append("Glossary:")
        lines.extend(f"  - {term}: {meaning}" for term, meaning in terms.items())
        lines.extend(f"  - {note}" for note in gloss.notes)
    return "\n".join(lines)


def generator_messages(item: FactsItem, images: Sequence[str] = ()) -> list[Message]:
    """The first-round request to the caption writer (`images`: data URLs of keyframes, optional)."""
    facts, gloss = item.facts, glossary_for(item.facts.source)
    n = expected_captions(facts)
    system = (f"You are an experienced {gloss.specialty} writing reference captions for a medical video "
              f"benchmark. Captions are judged on:\n" + _bullets(DIMENSIONS) + "\nRules:\n" + _bullets(GENERATOR_RULES))
    shape = ('{"captions": ["caption for segment 1", "..."]}' if facts.task == "dvc"
             else '{"captions": ["the whole paragraph as one string"]}')
    user = (f"{facts_block(item)}\n\nTask: {TASK_BRIEFS[facts.task]}\n"
            f"Reply with JSON only, exactly {n} caption(s): {shape}")
    return [{"role": "system", "content": system}, {"role": "user", "content": _with_images(user, images)}]


def revision_messages(first: Sequence[Message], previous_reply: str, problems: Sequence[str]) -> list[Message]:
    """The writer's conversation extended with its rejected reply and the reviewer's problems."""
    listed = _bullets(problems or ["the reviewer rejected it without details"])
    feedback = ("A clinical reviewer rejected these captions for the following problems:\n" + listed +
                "\nRewrite them so that every problem is fixed, still stating only what the facts support. "
                "Reply with JSON only, in the same format.")
    return [*first, {"role": "assistant", "content": previous_reply}, {"role": "user", "content": feedback}]


def validator_messages(item: FactsItem, captions: Sequence[str], images: Sequence[str] = ()) -> list[Message]:
    """The reviewer's request: check `captions` against the same facts."""
    facts, gloss = item.facts, glossary_for(item.facts.source)
    system = (f"You are a senior {gloss.specialty} reviewing captions written for a medical video benchmark "
              "against the expert annotations. Reject a caption that states anything the facts do not support "
              "(invented instruments, anatomy, findings or outcomes), contradicts them, mislabels a step, "
              "uses wrong terminology, or misses the task. Minor style is not a reason to reject. Check:\n"
              + _bullets(DIMENSIONS) +
              '\nReply with JSON only: {"accept": true|false, "problems": ["one short problem per item"]}. '
              "List problems only when rejecting.")
    numbered = "\n".join(f"  {i}. {text}" for i, text in enumerate(captions, 1))
    user = (f"{facts_block(item)}\n\nTask given to the writer: {TASK_BRIEFS[facts.task]}\n\n"
            f"Captions to review:\n{numbered}")
    return [{"role": "system", "content": system}, {"role": "user", "content": _with_images(user, images)}]


def _segment_line(seg: Any, gloss: Glossary) -> str:
    text = f"{seg.start:.1f}-{seg.end:.1f} s, {seg.kind}: {gloss.readable(seg.label)}"
    details = [f"{_DETAIL_NAMES.get(key, key)}: {_detail(key, value, gloss)}" for key, value in seg.details.items()
               if value not in ([], "", None)]
    return text + (f" ({'; '.join(details)})" if details else "")


def _detail(key: str, value: Any, gloss: Glossary) -> str:
    if key == "triplets" and isinstance(value, list):  # "grasper,retract,gallbladder" -> (instrument, verb, target)
        return ", ".join("(" + ", ".join(gloss.readable(p.strip()) for p in str(v).split(",")) + ")" for v in value)
    if isinstance(value, list):
        return ", ".join(gloss.readable(str(v)) for v in value)
    return gloss.readable(str(value)) if isinstance(value, str) else json.dumps(value)


def _fact_words(facts: CaptionFacts) -> list[str]:
    words = [facts.procedure]
    for seg in facts.segments:
        words.append(seg.label)
        for value in seg.details.values():
            words.extend(str(v) for v in value) if isinstance(value, list) else words.append(str(value))
    if facts.region is not None:
        words.append(facts.region.object)
    return words


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _with_images(text: str, images: Sequence[str]) -> str | list[dict[str, Any]]:
    if not images:
        return text
    parts: list[dict[str, Any]] = [{"type": "text", "text": text + "\n\nKeyframes of the clip follow, in time order."}]
    parts.extend({"type": "image_url", "image_url": {"url": url}} for url in images)
    return parts
