"""Caption stage: QA report figures, price table, and CLI input errors (no model is called)."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_preprocess.caption_writer import cli
from data_preprocess.caption_writer.accounting import Ledger, load_prices
from data_preprocess.caption_writer.pipeline import Outcome
from data_preprocess.caption_writer.report import agreement, build_report, write_plot
from testbed.toy_caption_facts import mixed_records, write_facts

NOWHERE = "http://127.0.0.1:9/v1"


def outcome(index: int, variant: str, *verdicts: bool, source: str = "CoPESD", task: str = "vs") -> Outcome:
    rounds = [{"round": k + 1, "captions": ["x"], "accept": v, "problems": [] if v else [f"wrong step {k + 1}"]}
              for k, v in enumerate(verdicts)]
    status = "accepted" if verdicts and verdicts[-1] else "rejected" if verdicts else "error"
    return Outcome(index, f"d{index}", source, task, variant, status, rounds, "" if verdicts else "writer: HTTP 500")


def test_agreement_counts_and_kappa() -> None:
    outcomes = [outcome(0, "gpt", True), outcome(0, "gemini", True),
                outcome(1, "gpt", False, True), outcome(1, "gemini", True),
                outcome(2, "gpt", False, False), outcome(2, "gemini", False, False),
                outcome(3, "gpt", True), outcome(3, "gemini", False, True)]
    agree = agreement(outcomes)
    assert (agree["both_accept"], agree["both_reject"], agree["only_gpt_accepted"],
            agree["only_gemini_accepted"]) == (1, 1, 1, 1)
    assert agree["first_round_agreement"] == 0.5 and agree["cohen_kappa"] == pytest.approx(0.0)
    assert agree["final_agreement"] == 1.0


def test_report_groups_rounds_reasons_and_plot(tmp_path: Path) -> None:
    outcomes = [outcome(0, "gpt", True), outcome(1, "gpt", False, True, task="rc"),
                outcome(2, "gpt", False, False, task="rc"), outcome(3, "gpt")]
    ledger = Ledger(load_prices(_prices(tmp_path)))
    use = ledger.usage("m")
    use.prompt_tokens, use.completion_tokens = 1_000_000, 500_000
    report = build_report(outcomes, ledger.summary(), {"max_rounds": 2})
    assert report["totals"] == {"jobs": 4, "accepted": 2, "rejected": 1, "error": 1, "acceptance_rate": 0.5}
    groups = {(g["task"], g["variant"]): g for g in report["groups"]}
    assert groups[("rc", "gpt")]["acceptance_rate"] == 0.5 and groups[("rc", "gpt")]["mean_rounds_accepted"] == 2
    assert report["rounds_needed"] == {"accepted in 1": 1, "accepted in 2": 1, "error": 1, "rejected": 1}
    assert report["top_rejection_reasons"][0] == {"problem": "wrong step N", "count": 3}
    assert report["top_error_reasons"] == [{"reason": "writer: http N", "count": 1}]
    assert report["usage"]["models"]["m"]["cost_usd"] == pytest.approx(2.0 + 4.0)
    assert [d["index"] for d in report["dropped"]] == [2, 3]
    write_plot(report, tmp_path / "qa.png")
    assert (tmp_path / "qa.png").read_bytes()[:4] == b"\x89PNG"


def _prices(tmp_path: Path, text: str = "m: {input_per_mtok: 2, output_per_mtok: 8}\n") -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "why"), [
    ("m: {input_per_mtok: 2}\n", "expected exactly the keys"),
    ("m: {input_per_mtok: -1, output_per_mtok: 1}\n", "finite numbers >= 0"),
    ("m: {input_per_mtok: true, output_per_mtok: 1}\n", "finite numbers >= 0"),
    ("- m\n", "expected a mapping"),
    ("m: [1, 2\n", "cannot read"),
])
def test_bad_price_tables_name_the_model(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        load_prices(_prices(tmp_path, text))


def _args(facts: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["--input", str(facts), "--out", str(tmp_path / "out.json"), "--gen-url", NOWHERE, "--gen-model", "a",
            "--val-url", NOWHERE, "--val-model", "b", "--no-progress", *extra]


@pytest.mark.parametrize(("extra", "why"), [
    (["--variants", "gpt,claude"], "--variants"),
    (["--variants", "gpt,gpt"], "--variants"),
    (["--gen-key-env", "A"], "both --gen-key-env and --val-key-env"),
    (["--max-rounds", "0"], "--max-rounds"),
    (["--timeout-s", "0"], "timeout_s"),
])
def test_cli_argument_errors(tmp_path: Path, extra: list[str], why: str) -> None:
    facts = write_facts(tmp_path, mixed_records(tmp_path)[:1])
    with pytest.raises(SystemExit, match=why):
        cli.run(_args(facts, tmp_path, *extra))


def test_missing_frame_stops_before_any_request(tmp_path: Path) -> None:
    records = mixed_records(tmp_path)
    facts = write_facts(tmp_path, records)
    (tmp_path / records[5]["caption_facts"]["keyframes"][0]).unlink()
    with pytest.raises(SystemExit, match=r"record 5: field 'caption_facts.region.frame': no frame file"):
        cli.run(_args(facts, tmp_path, "--with-frames"))
    assert not (tmp_path / "out.json").exists()


def test_bad_facts_file_is_one_line_error(tmp_path: Path) -> None:
    records = mixed_records(tmp_path)
    records[2]["caption_facts"]["segments"][0]["end"] = "soon"
    with pytest.raises(SystemExit, match=r"record 2: field 'caption_facts.segments\[0\].end'"):
        cli.run(_args(write_facts(tmp_path, records), tmp_path))


def test_report_settings_hold_no_url_secrets() -> None:
    from reward_fns.judge.redact import bare_url

    assert bare_url("https://u:pw@gen.example.com/v1beta/openai/?key=SECRET") == "https://gen.example.com/v1beta/openai/"
    assert bare_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
