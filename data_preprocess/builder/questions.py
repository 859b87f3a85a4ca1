"""Seeded question drawing from the (task, source) paraphrase banks of the builder config; `{persona}` and
`{setting}` (phrasing.py) open a question in the released records' style.

The draw depends only on the seed and the record's identity (source, video, task, clip start, values),
so a record keeps its question however the build is ordered or limited. Templates are filled by
validate.render (plain `{name}` placeholders replaced by text; nothing is evaluated).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from data_preprocess.builder.canonical import Video
from data_preprocess.builder.config import BuildConfig, ConfigError
from data_preprocess.builder.phrasing import opening
from data_preprocess.builder.validate import render


@dataclass(frozen=True)
class QuestionBank:
    config: BuildConfig
    seed: int

    def ask(self, task: str, video: Video, start: float, **values: Any) -> str:
        bank = self.config.bank(task, video.source)
        if not bank:
            raise ConfigError(f"{self.config.path}: questions.{task}: no bank for {video.source} and no default")
        key = "|".join([str(self.seed), video.source, video.video_id, task, f"{start:.3f}",
                        *(f"{k}={values[k]}" for k in sorted(values))])
        rng = random.Random(key)
        template = rng.choice(bank)
        src = self.config.sources.get(video.source)
        procedure = video.procedure or (src.procedure if src else "")
        fields = {"procedure": procedure or "the procedure", "source": video.source,
                  **opening(rng, video.source, procedure), **values}
        try:
            return render(template, fields)
        except KeyError as exc:
            raise ConfigError(f"{self.config.path}: questions.{task}: template {template!r} needs {exc}; "
                              f"available: {sorted(fields)}") from None


@dataclass(frozen=True)
class GenContext:
    """The generator context (see generators.base.Context) of one source."""

    procedure: str
    bank: QuestionBank

    def ask(self, task: str, video: Video, start: float, **values: Any) -> str:
        return self.bank.ask(task, video, start, **values)
