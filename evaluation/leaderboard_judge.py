"""The public leaderboard's LLM-judge protocol (spec section 5a), as pure functions.

The prompt is NOT shipped: `load_prompt_builder(DIR)` reads the public scorer's own
`create_llm_judge_prompt(prediction, ground_truth, task_type)` from the user's local copy. Only the
function's definition is compiled (its module's top-level code, which loads models and API clients,
never runs); if that definition needs module globals, the whole module is imported instead.

Everything else here (reply parsing, retry waits, DVC pairing in seconds, pooling) follows 5a.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reward_fns.registry import get_task
from reward_fns.tasks.dvc import THRESHOLDS  # the DVC task's IoU thresholds, also the judge pairing's

ASPECTS: tuple[str, ...] = ("R2", "R3", "R8", "R5", "R4")
PROMPT_MODULE = "eval_caption_llm_judge.py"
PROMPT_FUNCTION = "create_llm_judge_prompt"
# Where the module sits in a checkout of the public scorer, relative to --leaderboard-dir.
_SEARCH = (".", "evaluation", "MedVidBench-Leaderboard/evaluation")
# The call settings of 5a (the model comes from the judge config; gpt-4.1 reproduces the leaderboard).
CALL_SETTINGS: dict[str, object] = {"system_message": None, "temperature": 0.0, "max_tokens": None,
                                    "timeout_s": 30.0, "attempts": 5}
_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    a: tuple(re.compile(p.format(a=a)) for p in (
        r"{a}:\s*(\d+)", r"{a}\s*=\s*(\d+)", r"{a}\s*:\s*(\d+)", r"{a}\s+(\d+)", r"\*\*{a}\*\*\s*:\s*(\d+)"))
    for a in ASPECTS
}


class LeaderboardDirError(RuntimeError):
    """--leaderboard-dir is missing or does not hold the public scorer's prompt function."""


@dataclass(frozen=True)
class PromptBuilder:
    """The public scorer's prompt function and where it came from (recorded in metrics settings)."""

    build: Callable[[str, str, str], str]
    source: str
    sha256: str  # of the function's source text: which prompt version produced the numbers

    def __call__(self, prediction: str, ground_truth: str, task_type: str) -> str:
        return self.build(prediction, ground_truth, task_type)


def _find_module(directory: str | Path) -> Path:
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise LeaderboardDirError(f"--leaderboard-dir {root}: not a directory (clone the public MedVidBench "
                                  "leaderboard scorer and point here at its evaluation folder)")
    for sub in _SEARCH:
        path = root / sub / PROMPT_MODULE
        if path.is_file():
            return path
    raise LeaderboardDirError(f"--leaderboard-dir {root}: no {PROMPT_MODULE} in "
                              f"{', '.join(str(root / s) for s in _SEARCH)}")


def load_prompt_builder(directory: str | Path) -> PromptBuilder:
    """`create_llm_judge_prompt` from the user's copy of the public scorer; a clear error if absent."""
    path = _find_module(directory)
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as err:
        raise LeaderboardDirError(f"{path}: not valid Python: {err}") from None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == PROMPT_FUNCTION]
    if not defs:
        raise LeaderboardDirError(f"{path}: defines no function {PROMPT_FUNCTION}(prediction, ground_truth, "
                                  "task_type)")
    namespace: dict[str, object] = {}
    exec(compile(ast.Module(body=defs, type_ignores=[]), str(path), "exec"), namespace)
    build = namespace[PROMPT_FUNCTION]
    task_type = get_task("VS").stem  # the public function's `task_type` is a caption task's qa_type stem
    try:
        probe = build("prediction", "reference", task_type)  # type: ignore[operator]
    except NameError:  # the function needs module globals: import the module itself
        build = _import_function(path)
        probe = build("prediction", "reference", task_type)
    except Exception as err:  # a broken local copy must say so, not crash later mid-run
        raise LeaderboardDirError(f"{path}: {PROMPT_FUNCTION} failed on a probe call: {err!r}") from None
    if not isinstance(probe, str):
        raise LeaderboardDirError(f"{path}: {PROMPT_FUNCTION} returned {type(probe).__name__}, not a string")
    digest = hashlib.sha256(ast.get_source_segment(source, defs[0]).encode("utf-8")).hexdigest()
    return PromptBuilder(build, str(path), digest)  # type: ignore[arg-type]


def _import_function(path: Path) -> Callable[[str, str, str], str]:
    spec = importlib.util.spec_from_file_location("medvidbench_leaderboard_prompt", path)
    if spec is None or spec.loader is None:
        raise LeaderboardDirError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise LeaderboardDirError(f"{path}: importing it failed: {err!r}") from None
    return getattr(module, PROMPT_FUNCTION)


def parse_reply(text: object) -> tuple[dict[str, int] | None, str]:
    """(scores, "") or (None, reason). Per aspect the first match of the five patterns, in order;
    any integer is kept as it is (0, 7, 10). A missing aspect, a non-text reply or a number that
    Python cannot convert (over 4,300 digits) fails the attempt; this never raises."""
    if not isinstance(text, str):
        return None, f"reply is {type(text).__name__}, not text"
    scores: dict[str, int] = {}
    for aspect in ASPECTS:
        match = next((m for p in _PATTERNS[aspect] if (m := p.search(text))), None)
        if match is None:
            return None, f"no {aspect} in reply"
        try:
            scores[aspect] = int(match.group(1))
        except ValueError:
            return None, f"{aspect} value has {len(match.group(1))} digits"
    return scores, ""


def retry_wait_s(attempt: int, rate_limited: bool) -> float:
    """Seconds before attempt `attempt + 1`: min(2^a, 16); min(2^(a+2), 60) after a rate limit."""
    return float(min(2 ** (attempt + 2), 60) if rate_limited else min(2**attempt, 16))


@dataclass(frozen=True)
class Span:
    """A caption event in seconds (as parsed: never reordered, never split)."""

    start: float
    end: float
    caption: str


def seconds_iou(a: Span, b: Span) -> float:
    """inter / (len_a + len_b - inter), 0 when that denominator is <= 0 (lengths as given)."""
    inter = max(0.0, min(a.end, b.end) - max(a.start, b.start))
    union = (a.end - a.start) + (b.end - b.start) - inter
    if not union > 0:
        return 0.0
    value = inter / union
    return value if math.isfinite(value) else 0.0


def dvc_pairs(pred: Sequence[Span], gt: Sequence[Span], threshold: float) -> list[tuple[str, str]]:
    """(prediction caption, GT caption) for each predicted event whose best GT (highest IoU, first on
    ties, IoU > 0) reaches `threshold`."""
    pairs = []
    for p in pred:
        best, caption = 0.0, None
        for g in gt:
            iou = seconds_iou(p, g)
            if iou >= threshold and iou > best:
                best, caption = iou, g.caption
        if caption is not None:
            pairs.append((p.caption, caption))
    return pairs


AspectScores = Mapping[str, int]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def pooled_score(judged: Sequence[AspectScores]) -> float | None:
    """VS / RC: mean over the five aspects of each aspect's mean over judged pairs (None: none judged)."""
    if not judged:
        return None
    return _mean([_mean([s[a] for s in judged]) for a in ASPECTS])


def dvc_source_score(by_threshold: Mapping[float, Sequence[AspectScores]]) -> float:
    """One source's DVC llm: per threshold the mean over aspects whose pooled mean is > 0 (aspect mean
    0 when no pair), then the mean over thresholds whose value is > 0; 0 when none is."""
    per_threshold = []
    for t in THRESHOLDS:
        judged = by_threshold.get(t, ())
        aspect_means = [_mean([s[a] for s in judged]) if judged else 0.0 for a in ASPECTS]
        positive = [m for m in aspect_means if m > 0]
        per_threshold.append(_mean(positive) if positive else 0.0)
    positive = [v for v in per_threshold if v > 0]
    return _mean(positive) if positive else 0.0


def dvc_overall(per_source: Mapping[str, float], records: Mapping[str, int]) -> float | None:
    """Sources weighted by their number of DVC records (a source without a score counts as 0)."""
    total = sum(records.values())
    if not total:
        return None
    return sum(per_source.get(src, 0.0) * n for src, n in records.items()) / total
