"""Turn a facts record and its accepted captions into a finished MedVidBench record."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from data_preprocess.caption_writer.facts import FactsItem, caption_slots
from reward_fns.registry import CAPTION_VARIANTS


def dvc_answer(item: FactsItem, captions: Sequence[str]) -> str:
    """One line per facts segment: "{s:.1f}-{e:.1f} seconds: {label}: {caption}"."""
    return "\n".join(f"{seg.start:.1f}-{seg.end:.1f} seconds: {seg.label}: {text}"
                     for seg, text in zip(item.facts.segments, captions, strict=True))


def finished_record(item: FactsItem, variant: str, captions: Sequence[str]) -> dict[str, Any]:
    """The record with the answer and struc_info captions filled, `qa_type` = `<stem>_<variant>` and
    `caption_facts` removed. A DVC slot's caption is "<label>: <caption>", what the DVC parser reads
    back from the answer line."""
    if variant not in CAPTION_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {list(CAPTION_VARIANTS)}")
    record = copy.deepcopy(dict(item.record))
    record.pop("caption_facts", None)
    record["qa_type"] = f"{item.facts.stem}_{variant}"
    if item.facts.task == "dvc":
        answer = dvc_answer(item, captions)
        segments = item.facts.segments
        for slot, index in caption_slots(record["struc_info"], segments):
            slot["caption"] = f"{segments[index].label}: {captions[index]}"
    else:
        answer = captions[0]
    record["conversations"][1]["value"] = answer
    return record
