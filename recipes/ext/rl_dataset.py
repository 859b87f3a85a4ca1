"""verl RL dataset whose start-up prompt filter reports its progress in plain lines.

`data.filter_overlong_prompts` makes verl's `RLHFDataset` measure every prompt with its video (every
clip is decoded once) before training starts. verl runs it as one `datasets.filter` call whose tqdm
bar redraws with carriage returns, which Ray's log forwarding (the dataset lives in the TaskRunner
actor) shows only when it is done: minutes of silence on a large split. `ProgressRLDataset` runs the
same verl filter over consecutive chunks and prints one line per chunk (checked, kept, elapsed, time
left). Plug it in with

    data.custom_cls.path=pkg://recipes.ext.rl_dataset data.custom_cls.name=ProgressRLDataset

(recipes/config/medgrpo_grpo.yaml sets both). Everything else is verl's RLHFDataset.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import time

import datasets
from verl.utils.dataset.rl_dataset import RLHFDataset

CHUNKS = 20  # progress lines per filter pass (fewer when the split is small)
MIN_CHUNK_ROWS = 64  # rows per chunk at least (each chunk starts verl's worker pool once)


class _WithoutLengthLines(io.TextIOBase):
    """stdout minus verl's per-call "filter dataset len" line (its error messages pass through)."""

    def __init__(self, target):
        self.target = target

    def write(self, text: str) -> int:
        if not text.startswith("filter dataset len:"):
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()


def _eta(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


class ProgressRLDataset(RLHFDataset):
    """`RLHFDataset` printing the progress of `filter_overlong_prompts` (chunked; same result)."""

    def maybe_filter_out_long_prompts(self, dataframe: datasets.Dataset = None):
        total = len(dataframe) if dataframe is not None else 0
        if not self.filter_overlong_prompts or total == 0:
            return super().maybe_filter_out_long_prompts(dataframe)
        rows = max(MIN_CHUNK_ROWS, math.ceil(total / CHUNKS))
        chunks = math.ceil(total / rows)
        tag = f"[medgrpo] filter_overlong_prompts (max_prompt_length={self.max_prompt_length})"
        print(f"{tag}: measuring {total} prompts with their videos in {chunks} chunk(s), "
              f"{self.num_workers} worker(s)", flush=True)
        started, kept, done = time.monotonic(), [], 0
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # carriage-return bars: invisible through Ray until the end
        try:
            for start in range(0, total, rows):
                chunk = dataframe.select(range(start, min(start + rows, total)))
                with contextlib.redirect_stdout(_WithoutLengthLines(sys.stdout)):
                    kept.append(super().maybe_filter_out_long_prompts(chunk))
                done += len(chunk)
                elapsed = time.monotonic() - started
                left = elapsed / done * (total - done)
                print(f"{tag}: {done}/{total} checked, {sum(map(len, kept))} kept, {_eta(elapsed)} elapsed, "
                      f"~{_eta(left)} left", flush=True)
        finally:
            if bars:
                datasets.enable_progress_bars()
        result = datasets.concatenate_datasets(kept)
        print(f"filter dataset len: {len(result)} ({total - len(result)} prompt(s) over the limit dropped)",
              flush=True)
        return result
