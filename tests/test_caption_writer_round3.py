"""Hostile inputs round 3 (issue 21), caption stage on the scripted models: one-caption tasks answered as
a list of sentences, reviewers' prose is never acceptance, broken token counts, and every cache problem
(random bytes, truncated, a folder, read-only, locked) is one line before any request."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_preprocess.caption_writer import cli
from reward_fns.judge.cache import JudgeCache
from testbed.fake_caption_models import FakeCaptionModel
from testbed.toy_caption_facts import mixed_records, write_facts
from tests.test_caption_writer_on_server import FAST, output, run_stage, two_models


def test_one_caption_tasks_read_a_list_of_sentences_as_one_paragraph(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path))
    with two_models(paragraph_as_list=True) as (a, b):
        report = run_stage(tmp_path, a, b, facts)
        writer_bodies = [body for body in a.bodies if "reviewing captions" not in str(body["messages"][0])]
    assert report["totals"]["error"] == 0 and report["totals"]["accepted"] == report["totals"]["jobs"]
    one = [r for r in output(tmp_path) if r["qa_type"].startswith(("video_summary", "region_caption"))]
    assert one and all(r["conversations"][1]["value"].endswith("It names the instruments. It closes the clip.")
                       for r in one)
    # the writer is asked for a schema that fixes the count
    counts = {(body["response_format"]["json_schema"]["schema"]["properties"]["captions"]["minItems"],
               body["response_format"]["json_schema"]["schema"]["properties"]["captions"]["maxItems"])
              for body in writer_bodies}
    assert (1, 1) in counts and all(lo == hi for lo, hi in counts)


class ProseReviewer(FakeCaptionModel):
    """A reviewer that answers in prose mentioning `accept: yes` while rejecting."""

    def _review(self, user: str) -> str:
        self.reviews["prose"] += 1
        return "I cannot say accept: yes... reject."


def test_reviewer_prose_is_never_acceptance(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:1])
    with FakeCaptionModel("model-a").run_in_thread() as a, ProseReviewer("model-b").run_in_thread() as b:
        report = run_stage(tmp_path, a, b, facts, "--variants", "gpt")
    assert report["totals"]["accepted"] == 0 and report["totals"]["error"] == 1
    assert "acceptance not in a well-formed JSON reply" in report["dropped"][0]["reason"]
    assert output(tmp_path) == []


@pytest.mark.parametrize("usage", [{"prompt_tokens": 1e30, "completion_tokens": 1e30},
                                   {"prompt_tokens": -10**9, "completion_tokens": -5}])
def test_broken_token_counts_never_give_a_cost(tmp_path: Path, usage: dict) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:2])
    prices = tmp_path / "prices.yaml"
    prices.write_text("model-a: {input_per_mtok: 2.0, output_per_mtok: 8.0}\n"
                      "model-b: {input_per_mtok: 0.3, output_per_mtok: 2.5}\n")
    with two_models(usage=usage) as (a, b):
        report = run_stage(tmp_path, a, b, facts, "--prices", str(prices))
    for use in report["usage"]["models"].values():
        assert use["prompt_tokens"] == 0 and use["completion_tokens"] == 0 and use["cost_usd"] == 0.0
    assert report["usage"]["total_cost_usd"] == 0.0


def test_broken_token_counts_in_the_cache_are_ignored(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:1])
    cache = tmp_path / "c.sqlite"
    with two_models() as (a, b):
        run_stage(tmp_path, a, b, facts, "--cache", str(cache), "--variants", "gpt")
        with contextlib.closing(sqlite3.connect(cache)) as conn, conn:
            for key, value in conn.execute("SELECT key, value FROM judge_cache").fetchall():
                bad = {**json.loads(value), "prompt_tokens": 1e30, "completion_tokens": "lots"}
                conn.execute("UPDATE judge_cache SET value = ? WHERE key = ?", (json.dumps(bad), key))
        report = run_stage(tmp_path, a, b, facts, "--cache", str(cache), "--variants", "gpt")
    for use in report["usage"]["models"].values():
        assert use["cache_hits"] > 0 and use["cached_prompt_tokens"] == 0 and use["cached_completion_tokens"] == 0


def _filled_cache(path: Path, rows: int = 40) -> None:
    """A real cache of about `rows` pages (each value is about one 4 KiB page)."""
    cache = JudgeCache(path)
    for i in range(rows):
        cache.put(f"key-{i}", {"text": "x" * 3000, "prompt_tokens": 1, "completion_tokens": 1})
    cache.close()


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make `path` unwritable even for root (chattr +i), or by mode for other users."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a file read-only for root here (no chattr +i)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def _cache_error(tmp_path: Path, cache: Path, *extra: str) -> str:
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:1])
    with two_models() as (a, b):
        with pytest.raises(SystemExit) as err:
            cli.run(["--input", str(facts), "--out", str(tmp_path / "out.json"), "--gen-url", a.base_url,
                     "--gen-model", a.model, "--val-url", b.base_url, "--val-model", b.model, "--cache", str(cache),
                     *FAST, *extra])
        assert a.requests == b.requests == 0  # stopped before any request
    assert not (tmp_path / "out.json").exists()
    message = str(err.value)
    assert message.startswith(f"error: --cache {cache}") and "\n" not in message, message
    return message


def test_cache_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    assert "is a folder" in _cache_error(tmp_path, tmp_path / "cache")


def test_cache_of_random_bytes(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    cache.write_bytes(os.urandom(8192))
    assert "not an SQLite database" in _cache_error(tmp_path, cache)


@pytest.mark.parametrize("keep", [0.5, 0.2])
def test_truncated_cache(tmp_path: Path, keep: float) -> None:
    cache = tmp_path / "c.sqlite"
    _filled_cache(cache)
    data = cache.read_bytes()
    cache.write_bytes(data[: int(len(data) * keep)])
    assert "truncated or corrupt" in _cache_error(tmp_path, cache)


def test_read_only_cache_file(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    _filled_cache(cache, 3)
    with _read_only(cache):
        message = _cache_error(tmp_path, cache)
    assert "read-only" in message or "cannot be opened or written" in message


def test_cache_in_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    cache = folder / "c.sqlite"
    _filled_cache(cache, 3)
    with _read_only(folder):
        message = _cache_error(tmp_path, cache)
    assert "read-only" in message or "cannot be opened or written" in message


def test_locked_cache_is_one_line_after_the_wait(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    _filled_cache(cache, 3)
    holder = sqlite3.connect(cache, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert "locked by another process for over 0.3 s" in _cache_error(tmp_path, cache, "--cache-wait-s", "0.3")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_good_cache_still_opens(tmp_path: Path) -> None:
    cache = tmp_path / "sub" / "c.sqlite"
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:1])
    with two_models() as (a, b):
        run_stage(tmp_path, a, b, facts, "--cache", str(cache), "--variants", "gpt")
    _filled_cache(cache, 2)
    assert len(JudgeCache(cache)) >= 2
