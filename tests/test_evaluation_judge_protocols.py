"""The leaderboard judge protocol (spec 5a) against the local OpenAI-compatible server with scripted
replies; every column is checked against numbers computed by hand from those replies."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import leaderboard_judge as board
from evaluation.judge_protocols import LeaderboardProtocol, plan_pairs
from reward_fns.judge.cache import JudgeCache
from reward_fns.judge.chat import ChatClient
from reward_fns.reference import Reference
from testbed.judge_server import JudgeTestServer

# A made-up template standing in for the public scorer's prompt (never its real text). The top-level
# import of a module that does not exist proves that only the function definition is compiled.
FAKE_MODULE = '''
import a_module_that_is_not_installed  # the real scorer loads models and clients at import time

def create_llm_judge_prompt(prediction, ground_truth, task_type):
    return f"TEST TEMPLATE [{task_type}]\\nPRED<<{prediction}>>\\nGT<<{ground_truth}>>\\nscore it"
'''
_PRED = re.compile(r"PRED<<(.*?)>>", re.DOTALL)


def line(values: tuple[int, ...], style: str = "{a}: {v}") -> str:
    return "\n".join(style.format(a=a, v=v) for a, v in zip(("R2", "R3", "R8", "R5", "R4"), values, strict=True))


MALFORMED = "The prediction is quite good overall."
SCRIPT: dict[str, list[str]] = {  # prediction -> replies, one per request (the last one repeats)
    "alpha": [line((4, 4, 4, 4, 4), "{a} = {v}")],                          # `R2 = 4`
    "beta": [line((5, 3, 4, 5, 5), "**{a}**: {v}")],                         # `**R2**: 5`
    "gamma": [line((2, 2, 2, 2, 2)).rsplit("\n", 1)[0], line((2, 2, 2, 2, 2))],  # R4 missing, then success
    "delta": [MALFORMED],                                                   # five failures: left out
    "   ": [line((7, 1, 1, 1, 1))],                                          # an aspect of 7 is kept
    "epsilon": ["R2: 3 R3: 3 R8: 3 R5: 3 R4: 3"],
    "cap one": [line((4, 4, 4, 4, 4))],
    "cap two": [line((2, 0, 2, 2, 2))],
    "cap three": [line((5, 5, 5, 5, 5))],
    "cap four": [MALFORMED],
    "cap five": [line((3, 0, 3, 3, 3))],
}


class ScriptedJudge:
    """Reply by the prediction found in the prompt; counts requests per prediction."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, body: Mapping[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        pred = _PRED.search(prompt).group(1)  # type: ignore[union-attr]
        replies = SCRIPT[pred]
        reply = replies[min(self.calls[pred], len(replies) - 1)]
        self.calls[pred] += 1
        return reply


def dvc(source: str, answer: str, gt: list[tuple[float, float, str]]) -> tuple[Reference, str]:
    events = [{"start": s, "end": e, "caption": c} for s, e, c in gt]
    return Reference("dense_captioning_gpt", source, "", [events], fps=2.0), answer


RECORDS: list[tuple[Reference, str]] = [
    (Reference("video_summary_gpt", "AVOS", "ref a"), "alpha"),
    (Reference("video_summary_gemini", "NurViD", "ref b"), "beta"),
    (Reference("video_summary_gpt", "AVOS", "ref c"), "gamma"),
    (Reference("video_summary_gpt", "AVOS", "ref d"), "delta"),
    (Reference("video_summary_gpt", "AVOS", "ref e"), ""),      # empty: not judged
    (Reference("video_summary_gpt", "AVOS", "ref f"), "   "),   # whitespace only: judged
    (Reference("region_caption_gpt", "CoPESD", "ref g"), "epsilon"),
    dvc("AVOS", "0.0-10.0 seconds: cap one\n12.0-20.0 seconds: cap two", [(0, 10, "gt a"), (10, 20, "gt b")]),
    # overlapping events stay unsplit: 0-4 (IoU 0.4, paired at 0.3 only) and 2-10 (IoU 0.8)
    dvc("AVOS", "0.0-4.0 seconds: cap three\n2.0-10.0 seconds: cap four", [(0, 10, "gt c")]),
    dvc("CholecT50", "0.0-10.0 seconds: cap five", [(0, 10, "gt e")]),
    dvc("CoPESD", "no events here", [(0, 10, "gt f")]),
    (Reference("tal", "AVOS", "1-2 seconds."), "1-2"),        # other tasks are ignored
]

# By hand from SCRIPT. VS pools alpha, beta, gamma (2nd reply) and "   " per aspect:
# R2 (4+5+2+7)/4 = 4.5, R3 (4+3+2+1)/4 = 2.5, R8 (4+4+2+1)/4 = 2.75, R5 = R4 = (4+5+2+1)/4 = 3.0.
VS = (4.5 + 2.5 + 2.75 + 3.0 + 3.0) / 5  # 3.15
RC = 3.0
# AVOS DVC: t=0.3 pairs one, two, three (four dropped): R2 = R8 = R5 = R4 = 11/3, R3 = 9/3 -> 53/15;
# t=0.5 and t=0.7 pairs one, two: R2 = R8 = R5 = R4 = 3, R3 = 2 -> 14/5. Source: (53/15 + 2 * 14/5) / 3.
AVOS_DVC = (53 / 15 + 2 * 14 / 5) / 3  # 137/45
CHOLECT50_DVC = 3.0  # R3 = 0 at every threshold: only the aspects with a mean > 0 count
DVC = (2 * AVOS_DVC + 1 * CHOLECT50_DVC + 1 * 0.0) / 4  # weighted by DVC records; CoPESD has no pair


@pytest.fixture
def leaderboard_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "MedVidBench-Leaderboard" / "evaluation"
    folder.mkdir(parents=True)
    (folder / "eval_caption_llm_judge.py").write_text(FAKE_MODULE, encoding="utf-8")
    return tmp_path


def run_protocol(leaderboard_dir: Path, cache: JudgeCache | None = None) -> tuple[Any, ScriptedJudge, Any]:
    script = ScriptedJudge()
    with JudgeTestServer(replies=script).run_in_thread() as server:
        client = ChatClient(server.base_url, concurrency=4, timeout_s=30.0, deadline_s=30.0, max_retries=0)
        protocol = LeaderboardProtocol(board.load_prompt_builder(leaderboard_dir), client, model="gpt-4.1",
                                       cache=cache, wait_scale=0.0)
        refs, preds = zip(*RECORDS, strict=True)
        result = protocol.caption_columns(list(refs), list(preds))
        bodies = list(server.bodies)
    return result, script, bodies


def test_three_columns_match_hand_computed_numbers(leaderboard_dir: Path) -> None:
    result, script, bodies = run_protocol(leaderboard_dir)
    assert result.columns["vs_llm"] == pytest.approx(VS)
    assert result.columns["rc_llm"] == pytest.approx(RC)
    assert result.columns["dvc_llm"] == pytest.approx(DVC)
    assert result.per_source["AVOS"]["dvc_llm"] == pytest.approx(AVOS_DVC)
    assert result.per_source["CholecT50"]["dvc_llm"] == pytest.approx(CHOLECT50_DVC)
    assert result.per_source["CoPESD"]["dvc_llm"] == 0.0
    # retry and drop rules: a missing aspect is retried, five failures leave the pair out
    assert script.calls["gamma"] == 2 and script.calls["delta"] == 5 and script.calls["cap four"] == 5
    assert "" not in script.calls and script.calls["   "] == 1
    assert script.calls["cap one"] == 1  # paired at three thresholds, asked once
    totals = result.totals
    assert (totals.vs_pairs, totals.rc_pairs, totals.dvc_pairs) == (5, 1, 4 + 3 + 3 + 3)
    assert (totals.requests, totals.judged, totals.dropped) == (11, 9, 2)
    assert totals.http_attempts == len(bodies) == 20 and totals.prompt_tokens > 0
    # call settings: one user message, temperature 0, the task type in the public prompt
    assert all([m["role"] for m in b["messages"]] == ["user"] and b["temperature"] == 0.0 for b in bodies)
    assert all(b["model"] == "gpt-4.1" and "max_tokens" not in b and "max_completion_tokens" not in b for b in bodies)
    kinds = Counter(re.search(r"\[(\w+)\]", b["messages"][0]["content"]).group(1) for b in bodies)  # type: ignore
    assert kinds == {"video_summary": 10, "region_caption": 1, "dense_captioning": 9}


def test_cache_answers_a_rerun_without_requests(leaderboard_dir: Path, tmp_path: Path) -> None:
    cache = JudgeCache(tmp_path / "judge.sqlite")
    first, _, _ = run_protocol(leaderboard_dir, cache)
    again, script, bodies = run_protocol(leaderboard_dir, cache)
    assert again.columns == first.columns
    assert again.totals.cache_hits == 9 and sorted(script.calls) == ["cap four", "delta"]  # failures not cached
    assert len(bodies) == 10


def test_prompt_builder_errors_are_clear(tmp_path: Path, leaderboard_dir: Path) -> None:
    with pytest.raises(board.LeaderboardDirError, match="not a directory"):
        board.load_prompt_builder(tmp_path / "missing")
    with pytest.raises(board.LeaderboardDirError, match=r"no eval_caption_llm_judge\.py"):
        (tmp_path / "other").mkdir()
        board.load_prompt_builder(tmp_path / "other")
    assert board.load_prompt_builder(tmp_path / "MedVidBench-Leaderboard").source.endswith("eval_caption_llm_judge.py")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "eval_caption_llm_judge.py").write_text("X = 1\n")
    with pytest.raises(board.LeaderboardDirError, match="defines no function create_llm_judge_prompt"):
        board.load_prompt_builder(tmp_path / "empty")
    builder = board.load_prompt_builder(leaderboard_dir / "MedVidBench-Leaderboard" / "evaluation")
    assert builder("p", "g", "region_caption").startswith("TEST TEMPLATE [region_caption]")
    assert len(builder.sha256) == 64 and builder.source.endswith("eval_caption_llm_judge.py")


def test_prompt_needing_module_globals_imports_the_module(tmp_path: Path) -> None:
    (tmp_path / "eval_caption_llm_judge.py").write_text(
        "HEAD = 'TEST HEAD'\n\ndef create_llm_judge_prompt(prediction, ground_truth, task_type):\n"
        "    return f'{HEAD} {task_type}: {prediction} vs {ground_truth}'\n")
    assert board.load_prompt_builder(tmp_path)("a", "b", "video_summary") == "TEST HEAD video_summary: a vs b"


@pytest.mark.parametrize(("reply", "expected"), [
    ("R2: 4\nR3: 3\nR8: 2\nR5: 1\nR4: 5", (4, 3, 2, 1, 5)),
    ("R2 = 4, R3 = 3, R8 = 2, R5 = 1, R4 = 5", (4, 3, 2, 1, 5)),
    ("R2 : 4 R3 : 3 R8 : 2 R5 : 1 R4 : 5", (4, 3, 2, 1, 5)),
    ("R2 4 R3 3 R8 2 R5 1 R4 5", (4, 3, 2, 1, 5)),
    ("**R2**: 4 **R3**: 3 **R8**: 2 **R5**: 1 **R4**: 5", (4, 3, 2, 1, 5)),
    ("R2: 0 R3: 7 R8: 10 R5: 1 R4: 5", (0, 7, 10, 1, 5)),    # any integer, as it is
    ("R2: 4 R2: 1 R3: 3 R8: 2 R5: 1 R4: 5", (4, 3, 2, 1, 5)),  # the first match wins
    ("R2 = 9 R2: 4 R3: 3 R8: 2 R5: 1 R4: 5", (4, 3, 2, 1, 5)),  # pattern order beats text order
    ("R2: 4.5 R3: 3 R8: 2 R5: 1 R4: 5", (4, 3, 2, 1, 5)),      # digits only: 4.5 reads as 4
])
def test_reply_patterns(reply: str, expected: tuple[int, ...]) -> None:
    scores, reason = board.parse_reply(reply)
    assert reason == "" and tuple(scores.values()) == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(("reply", "reason"), [
    ("R2: 4 R3: 3 R8: 2 R5: 1", "no R4"),
    ("r2: 4 r3: 3 r8: 2 r5: 1 r4: 5", "no R2"),                  # case-sensitive
    ("R2: x R3: 3 R8: 2 R5: 1 R4: 5", "no R2"),
    (None, "reply is NoneType"),
    ("R2: " + "9" * 5000 + " R3: 3 R8: 2 R5: 1 R4: 5", "R2 value has 5000 digits"),
])
def test_reply_failures(reply: object, reason: str) -> None:
    scores, why = board.parse_reply(reply)
    assert scores is None and why.startswith(reason)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_reply_parser_never_raises(text: str) -> None:
    scores, reason = board.parse_reply(text)
    assert (scores is None) == bool(reason)


def test_retry_waits() -> None:
    assert [board.retry_wait_s(a, False) for a in range(5)] == [1, 2, 4, 8, 16]
    assert [board.retry_wait_s(a, True) for a in range(5)] == [4, 8, 16, 32, 60]


def test_seconds_iou_and_pairing() -> None:
    a, b = board.Span(0, 10, "a"), board.Span(5, 15, "b")
    assert board.seconds_iou(a, b) == pytest.approx(5 / 15)
    assert board.seconds_iou(board.Span(3, 3, "p"), board.Span(3, 3, "q")) == 0.0  # denominator 0
    assert board.seconds_iou(board.Span(10, 0, "r"), board.Span(0, 10, "s")) == 0.0  # reversed: lengths as given
    gt = [board.Span(0, 10, "first"), board.Span(0, 10, "second"), board.Span(20, 30, "far")]
    assert board.dvc_pairs([board.Span(0, 10, "p")], gt, 0.5) == [("p", "first")]  # ties: first
    assert board.dvc_pairs([board.Span(0, 5, "p")], gt, 0.5) == [("p", "first")]    # IoU 0.5 >= 0.5
    assert board.dvc_pairs([board.Span(0, 4, "p")], gt, 0.5) == []
    assert board.dvc_pairs([board.Span(40, 50, "p")], gt, 0.0) == []  # IoU 0 is never paired


def test_pooling_rules() -> None:
    assert board.pooled_score([]) is None
    five = dict.fromkeys(("R2", "R3", "R8", "R5", "R4"), 4)
    zero_r3 = {**five, "R3": 0}
    # a threshold with only failed pairs is 0 and left out of the mean over thresholds
    assert board.dvc_source_score({0.3: [five], 0.5: [], 0.7: [zero_r3]}) == pytest.approx(4.0)
    assert board.dvc_source_score({}) == 0.0
    assert board.dvc_overall({"A": 4.0}, {"A": 3, "B": 1}) == pytest.approx(3.0)
    assert board.dvc_overall({}, {}) is None


def test_plan_pairs_reads_raw_texts() -> None:
    refs, preds = zip(*RECORDS, strict=True)
    plan = plan_pairs(list(refs), list(preds))
    assert [p for p, _ in plan.pooled["VS"]] == ["alpha", "beta", "gamma", "delta", "   "]
    assert plan.dvc_records == {"AVOS": 2, "CholecT50": 1, "CoPESD": 1}
    assert plan.dvc["AVOS"][0.3] == [("cap one", "gt a"), ("cap two", "gt b"), ("cap three", "gt c"),
                                     ("cap four", "gt c")]
    # header captions: newlines become spaces; fallback captions lose a trailing dot
    ref = Reference("dense_captioning_gpt", "AVOS", "", [[{"start": 0, "end": 10, "caption": "g"}]])
    plan = plan_pairs([ref, ref], ["0.0-10.0 seconds: two\nlines", "0.0 - 31.0 seconds: cut - the duct."])
    assert [p for p, _ in plan.dvc["AVOS"][0.3]] == ["two lines", "the duct"]


EXAMPLES = Path(__file__).resolve().parents[1] / "evaluation" / "examples"


def test_score_cli_defaults_to_the_leaderboard_protocol(tmp_path: Path, leaderboard_dir: Path) -> None:
    import json

    from evaluation import score_submission as score_cli

    gt, pred = EXAMPLES / "gt_small.json", EXAMPLES / "pred_small.json"
    constant = line((4, 3, 4, 2, 5))  # every pair: mean over aspects 3.6
    with JudgeTestServer(replies=lambda body: constant).run_in_thread() as server:
        config = tmp_path / "judge.yaml"
        config.write_text(f"judge:\n  base_url: {server.base_url}\n  cache_path: {tmp_path / 'c.sqlite'}\n")
        base = ["--gt", str(gt), "--pred", str(pred), "--judge", "openai", "--judge-config", str(config)]
        with pytest.raises(SystemExit, match="needs --leaderboard-dir DIR"):
            score_cli.run(base)
        with pytest.raises(SystemExit, match="not a directory"):
            score_cli.run([*base, "--leaderboard-dir", str(tmp_path / "nowhere")])
        out = tmp_path / "m.json"
        score_cli.run([*base, "--out", str(out), "--leaderboard-dir", str(leaderboard_dir)])
        requests = server.completions
    metrics = json.loads(out.read_text())
    assert metrics["settings"]["judge_protocol"] == "leaderboard"
    judge = metrics["settings"]["judge_settings"]
    assert judge["model"] == "gpt-4.1" and judge["attempts"] == 5 and judge["timeout_s"] == 30.0
    assert judge["prompt_source"].endswith("eval_caption_llm_judge.py") and judge["comparable_to_leaderboard"]
    assert any("MiniLM" in d for d in judge["deviations"])
    assert metrics["vs_llm"] == pytest.approx(3.6) and metrics["rc_llm"] == pytest.approx(3.6)
    records = [r for r in json.loads(gt.read_text()) if r["qa_type"].startswith("dense_captioning")]
    assert metrics["dvc_llm"] is not None and 0.0 <= metrics["dvc_llm"] <= 3.6 + 1e-9
    assert metrics["counts"]["judge"]["requests"] == requests and metrics["counts"]["judge"]["dropped"] == 0
    assert records and "vs_medjudge" not in metrics


def test_medgrpo_backend_queues_outside_the_client_deadline() -> None:
    from evaluation.caption_columns import JudgeBackend
    from reward_fns.judge.client import JudgeConfig, MedicalJudge
    from reward_fns.registry import CaptionPair

    pairs = [CaptionPair(f"the surgeon clips duct {i}", f"the surgeon clips the cystic duct {i}") for i in range(5)]
    with JudgeTestServer(latency_s=0.2).run_in_thread() as server:
        config = JudgeConfig.from_dict({"base_url": server.base_url, "model": "m", "concurrency": 1,
                                        "timeout_s": 0.45, "deadline_s": 0.5, "max_retries": 0})
        scores = JudgeBackend(MedicalJudge(config)).score_pairs(pairs)  # 5 x 0.2 s in a row > the 0.5 s deadline
    assert all(s is not None for s in scores) and JudgeBackend.suffix == "_medjudge"


_EVENT = st.builds(lambda a, b, c: f"{a}-{b} seconds: {c}", st.one_of(st.integers(0, 10**5), st.just("9" * 5000)),
                   st.one_of(st.integers(0, 10**5), st.just("1" * 400)), st.text(max_size=20))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(_EVENT, st.text(max_size=40)), max_size=6).map("\n".join))
def test_dvc_pairing_never_raises(answer: str) -> None:
    ref = Reference("dense_captioning_gpt", "AVOS", "", [[{"start": 0, "end": 10, "caption": "g"}]])
    plan = plan_pairs([ref], [answer])
    assert plan.dvc_records == {"AVOS": 1}
    assert all(gt == "g" for pairs in plan.dvc["AVOS"].values() for _, gt in pairs)


def test_a_failing_prompt_function_drops_the_pair_not_the_run(tmp_path: Path) -> None:
    (tmp_path / "eval_caption_llm_judge.py").write_text(
        "def create_llm_judge_prompt(prediction, ground_truth, task_type):\n"
        "    if 'bad' in prediction:\n        raise ValueError('cannot format')\n"
        "    return f'TEST TEMPLATE [{task_type}]\\nPRED<<{prediction}>>\\nGT<<{ground_truth}>>'\n")
    with JudgeTestServer(replies=ScriptedJudge()).run_in_thread() as server:
        client = ChatClient(server.base_url, concurrency=2, timeout_s=30.0, deadline_s=30.0, max_retries=0)
        protocol = LeaderboardProtocol(board.load_prompt_builder(tmp_path), client, wait_scale=0.0)
        refs = [Reference("video_summary_gpt", "AVOS", "r1"), Reference("video_summary_gpt", "AVOS", "r2")]
        result = protocol.caption_columns(refs, ["alpha", "bad answer"])
    assert result.columns["vs_llm"] == pytest.approx(4.0)
    assert (result.totals.vs_pairs, result.totals.requests, result.totals.dropped) == (2, 1, 1)
