"""Caption stage end to end on two scripted models served by the project's OpenAI-compatible test
server: accept, reject-then-fix, reject-always, malformed reviews, faults, cache reruns, costs, keys."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from data_preprocess.caption_writer import cli
from testbed.fake_caption_models import FakeCaptionModel
from testbed.judge_server import FaultPlan, count_tokens
from testbed.toy_caption_facts import mixed_records, write_facts

FAST = ["--timeout-s", "1", "--deadline-s", "20", "--max-retries", "3", "--no-progress"]


@contextlib.contextmanager
def two_models(plan_a: FaultPlan | None = None, plan_b: FaultPlan | None = None, **kw: Any
               ) -> Iterator[tuple[FakeCaptionModel, FakeCaptionModel]]:
    with (FakeCaptionModel("model-a", plan=plan_a, hang_s=5.0, **kw).run_in_thread() as a,
          FakeCaptionModel("model-b", plan=plan_b, hang_s=5.0, **kw).run_in_thread() as b):
        yield a, b


def run_stage(tmp: Path, a: FakeCaptionModel, b: FakeCaptionModel, facts: Path, *extra: str) -> dict[str, Any]:
    cli.run(["--input", str(facts), "--out", str(tmp / "out.json"), "--gen-url", a.base_url, "--gen-model", a.model,
             "--val-url", b.base_url, "--val-model", b.model, "--report", str(tmp / "report.json"), *FAST, *extra])
    return json.loads((tmp / "report.json").read_text())


def output(tmp: Path) -> list[dict[str, Any]]:
    return json.loads((tmp / "out.json").read_text())


def test_accept_fix_and_drop_are_all_reported(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path, {"VID01": "[review: reject_then_fix]",
                                                           "ego01": "[review: reject_always]"}))
    with two_models() as (a, b):
        report = run_stage(tmp_path, a, b, facts, "--plot", str(tmp_path / "report.png"))
    records = output(tmp_path)
    assert report["totals"] == {"jobs": 14, "accepted": 12, "rejected": 2, "error": 0, "acceptance_rate": 12 / 14,
                                "passed_through": 0}
    assert [r["qa_type"] for r in records[:2]] == ["dense_captioning_gpt", "dense_captioning_gemini"]
    assert all("caption_facts" not in r and r["conversations"][1]["value"] for r in records)
    # _gpt written by the first model and checked by the second; _gemini the reverse
    assert "model-a caption 1 (draft 2)" in records[0]["conversations"][1]["value"]
    assert "model-b caption 1 (draft 2)" in records[1]["conversations"][1]["value"]
    assert "(draft 1)" in records[2]["conversations"][1]["value"]
    assert report["rounds_needed"] == {"accepted in 1": 10, "accepted in 2": 2, "rejected": 2}
    dropped = {(d["index"], d["variant"], d["status"]) for d in report["dropped"]}
    assert dropped == {(4, "gpt", "rejected"), (4, "gemini", "rejected")}
    assert report["dropped"][0]["last_problems"] == ["The caption names an instrument the facts do not list."]
    assert report["top_rejection_reasons"][0]["count"] == 2 + 2 * 2  # 2 first-round fixes + 2 drops x 2 rounds
    groups = {(g["source"], g["task"], g["variant"]): g for g in report["groups"]}
    assert groups[("EgoSurgery", "vs", "gpt")]["acceptance_rate"] == 0.0
    assert groups[("CholecT50", "dvc", "gemini")]["mean_rounds_accepted"] == 2.0
    assert report["agreement"]["first_round_agreement"] == 1.0
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "out.json.journal.jsonl").exists()


def test_reviewers_that_disagree_show_in_agreement(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path, {"VID01": "[review: only-model-b-rejects]",
                                                           "nurvid1": "[review: only-model-b-rejects]"}))
    with two_models() as (a, b):
        report = run_stage(tmp_path, a, b, facts, "--max-rounds", "1")
    agree = report["agreement"]
    assert (agree["both_accept"], agree["only_gemini_accepted"], agree["only_gpt_accepted"]) == (5, 2, 0)
    assert agree["first_round_agreement"] == pytest.approx(5 / 7) and agree["final_agreement"] == pytest.approx(5 / 7)
    assert agree["cohen_kappa"] == pytest.approx(0.0)


def test_malformed_reviews_are_reasked_then_dropped(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path, {"VID01": "[review: malformed_once]",
                                                           "vid12": "[review: malformed_always]"}))
    with two_models() as (a, b):
        report = run_stage(tmp_path, a, b, facts, "--variants", "gpt")
    assert report["totals"]["accepted"] == 6 and report["totals"]["error"] == 1
    [dropped] = report["dropped"]
    assert (dropped["index"], dropped["status"]) == (5, "error")
    assert "reviewer" in dropped["reason"] and "unreadable reply" in dropped["reason"]
    assert report["usage"]["models"]["model-b"]["unreadable_replies"] == 1 + 4  # once + (1 + 3 re-asks)
    assert b.reviews["malformed_always"] == 4


def test_faults_are_retried_honouring_retry_after(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:2])
    with two_models(plan_a=FaultPlan(["429", "500"]), plan_b=FaultPlan(["hang"]), retry_after="2") as (a, b):
        start = time.monotonic()
        report = run_stage(tmp_path, a, b, facts, "--variants", "gpt", "--concurrency", "1")
        elapsed = time.monotonic() - start
    assert report["totals"]["accepted"] == 2
    assert a.faults_served["429"] == 1 and a.faults_served["500"] == 1 and b.faults_served["hang"] == 1
    assert elapsed >= 2.0  # the 429's Retry-After was waited for
    assert report["usage"]["models"]["model-a"]["http_calls"] == a.completions == 2 + 2


def test_endpoint_down_is_an_error_outcome_retried_on_resume(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:3])
    args = ["--input", str(facts), "--out", str(tmp_path / "out.json"), "--variants", "gpt", *FAST]
    with two_models(plan_b=FaultPlan([None], rates={"500": 1.0})) as (a, b):  # the reviewer fails after 1 reply
        report = run_stage(tmp_path, a, b, facts, "--variants", "gpt", "--max-retries", "1")
    assert report["totals"]["accepted"] == 1 and report["totals"]["error"] == 2 and len(output(tmp_path)) == 1
    assert all("reviewer" in d["reason"] and "HTTP 500" in d["reason"] for d in report["dropped"])
    assert (tmp_path / "out.json.journal.jsonl").exists()  # kept while jobs are in error
    with two_models() as (a, b):
        models = ["--gen-url", a.base_url, "--gen-model", a.model, "--val-url", b.base_url, "--val-model", b.model]
        assert cli.main([*args, *models]) == 0
        assert a.completions == b.completions == 2  # only the two failed jobs again
    assert len(output(tmp_path)) == 3 and not (tmp_path / "out.json.journal.jsonl").exists()


def test_cache_rerun_makes_no_http_call_and_costs_are_priced(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path, {"VID01": "[review: reject_then_fix]"}))
    prices = tmp_path / "prices.yaml"
    prices.write_text("model-a: {input_per_mtok: 2.0, output_per_mtok: 8.0}\n"
                      "model-b: {input_per_mtok: 0.3, output_per_mtok: 2.5}\n")
    cache = str(tmp_path / "captions.sqlite")
    with two_models() as (a, b):
        first = run_stage(tmp_path, a, b, facts, "--cache", cache, "--prices", str(prices))
        bodies = {a.model: a.bodies, b.model: b.bodies}
        before = output(tmp_path)
        calls = a.completions + b.completions
        second = run_stage(tmp_path, a, b, facts, "--cache", cache, "--prices", str(prices))
        assert a.completions + b.completions == calls  # 0 HTTP calls on the rerun
    assert output(tmp_path) == before
    rates = {"model-a": (2.0, 8.0), "model-b": (0.3, 2.5)}
    for model, use in first["usage"]["models"].items():
        prompt = sum(count_tokens(m["content"]) for body in bodies[model] for m in body["messages"])
        completion = use["completion_tokens"]
        assert use["prompt_tokens"] == prompt and completion > 0
        assert use["cost_usd"] == pytest.approx((prompt * rates[model][0] + completion * rates[model][1]) / 1e6)
        again = second["usage"]["models"][model]
        assert again["http_calls"] == 0 and again["cache_hits"] == again["requests"] == use["requests"]
        assert again["cost_usd"] == 0.0 and again["saved_by_cache_usd"] == pytest.approx(use["cost_usd"])
    costs = [m["cost_usd"] for m in first["usage"]["models"].values()]
    assert first["usage"]["total_cost_usd"] == pytest.approx(sum(costs))


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_journal(tmp_path: Path) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path))
    journal = tmp_path / "out.json.journal.jsonl"
    with two_models(latency_s=0.2) as (a, b):
        args = ["--input", str(facts), "--out", str(tmp_path / "out.json"), "--gen-url", a.base_url,
                "--gen-model", a.model, "--val-url", b.base_url, "--val-model", b.model, "--variants", "gpt",
                "--concurrency", "1", *FAST]
        child = subprocess.Popen([sys.executable, "-m", "data_preprocess.caption_writer", *args],
                                 cwd=Path(__file__).resolve().parents[1])
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _journaled(journal) < 2:
                time.sleep(0.05)
        finally:
            child.kill()
            child.wait()
        finished = _journaled(journal)
        assert 2 <= finished < 7 and not (tmp_path / "out.json").exists()
        calls = a.completions + b.completions
        cli.run(args)
        assert a.completions + b.completions - calls == 2 * (7 - finished)  # write + review per unfinished job
    assert not journal.exists()
    assert [r["qa_type"] for r in output(tmp_path)] == [
        "dense_captioning_gpt"] * 3 + ["video_summary_gpt"] * 2 + ["region_caption_gpt"] * 2


def test_journal_of_other_settings_is_discarded(tmp_path: Path) -> None:
    from data_preprocess.caption_writer.pipeline import Journal, Outcome

    old = Journal(tmp_path / "j.jsonl", "settings-1")
    old.add(Outcome(0, "d", "AVOS", "vs", "gpt", "accepted", [], record={}))
    old.close()
    assert len(Journal(tmp_path / "j.jsonl", "settings-1").done) == 1
    assert Journal(tmp_path / "j.jsonl", "settings-2").done == {}


def _journaled(path: Path) -> int:
    """Finished outcomes in a journal (its first line is the settings header)."""
    try:
        lines = path.read_text().splitlines()[1:]
    except FileNotFoundError:
        return 0
    count = 0
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):
            count += isinstance(json.loads(line), dict)
    return count


def test_api_key_never_leaves_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-test-SECRET-0123456789abcdef"
    monkeypatch.setenv("CAPTION_KEY", secret)
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:2])
    with two_models(plan_a=FaultPlan(["echo_auth", "echo_auth_reply"])) as (a, b):
        run_stage(tmp_path, a, b, facts, "--api-key-env", "CAPTION_KEY", "--cache", str(tmp_path / "c.sqlite"),
                  "--variants", "gpt", "--max-retries", "1")
        assert a.authorizations[0] == f"Bearer {secret}"
    written = "".join(p.read_bytes().decode("utf-8", "replace") for p in tmp_path.iterdir() if p.is_file())
    captured = capsys.readouterr()
    assert secret not in written + caplog.text + captured.out + captured.err
