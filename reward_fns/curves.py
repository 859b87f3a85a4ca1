"""Training curves per (data_source, task) and step, with alarms, from what a GRPO run writes.

    python -m reward_fns.curves --run DIR [--out curves.png] [--csv curves.csv]
        [--log FILE] [--rollouts DIR] [--val DIR] [--config FILE] [--stats FILE] [--judge cache|off|call]

Reads (found under --run, or given one by one):
- the rollout dumps (`trainer.rollout_data_dir`: <step>.jsonl with every training answer, its ground
  truth, the reward the trainer used and its group's uid): DIR/grpo_rollouts or any folder of <N>.jsonl;
- the validation dumps (`trainer.validation_data_dir`, with the reward manager's raw/normalized/task
  per answer), if any: DIR/grpo_val;
- the verl file-logger log (`VERL_FILE_LOGGER_PATH`): response length, entropy, KL per step;
- the run's composed config (Hydra's .hydra/config.yaml) and reward stats: the training dumps carry
  only the trainer's (normalized) reward, so each answer is rescored with the run's own reward settings
  for the raw reward; caption answers read the judge cache (`--judge cache`: a miss is a judge failure
  and its caption reward is the similarity alone; `call` asks the run's judge; `off`: similarity only).

Per (split, step, data_source, task): answers, mean raw and normalized reward, share of answer groups
whose rewards are all equal (zero advantage: wasted samples), mean response length (characters),
parse failures and judge failures. Alarms, printed at the end (exit status 0 all the same):
- `reward-drop`: a pair whose mean raw reward over a window of points falls below an earlier window's
  by more than its calibration IQR (at least --min-drop);
- `zero-advantage`: a pair whose zero-advantage share stays >= --zero-adv over the last window;
- `length-collapse`: response length whose last window's mean is below --collapse x the first window's;
- `length-growth`: above --growth x the first window's (a policy padding its answers, e.g. listing
  extra TAG spans: the leaderboard's matched mIoU never penalizes extra predictions).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import io
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reward_fns.atomic_io import atomic_path, write_text_atomic
from reward_fns.reference import Reference
from reward_fns.registry import task_for_qa_type

COLUMNS = ("split", "step", "data_source", "task", "n", "raw", "normalized", "groups", "zero_adv_share",
           "response_chars", "parse_failures", "judge_failures")
LOG_KEYS = {"score": "critic/score/mean", "response_length": "response_length/mean", "entropy": "actor/entropy",
            "kl": "actor/kl_loss", "pg_loss": "actor/pg_loss"}
ROLLOUT_DIRS = ("grpo_rollouts", "rollouts", "rollout_data")
VAL_DIRS = ("grpo_val", "val_generations", "validation_data")
LOG_FILES = ("logs/grpo_metrics.jsonl", "grpo_metrics.jsonl", "metrics.jsonl")
UNREACHABLE = "http://127.0.0.1:9/v1"  # --judge cache: requests the cache misses fail at once
EQUAL_TOL = 1e-9


@dataclass(frozen=True)
class Thresholds:
    """Alarm settings; `window` counts points (steps where the pair appears)."""

    window: int = 3
    min_drop: float = 0.05
    zero_adv: float = 0.9
    collapse: float = 0.5
    growth: float = 2.0


@dataclass(frozen=True)
class Alarm:
    kind: str
    where: str
    message: str

    def line(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"


@dataclass
class Inputs:
    rollouts: Path | None = None
    val: Path | None = None
    log: Path | None = None
    config: Path | None = None
    stats: Path | None = None


@dataclass
class Run:
    """The curves table (`rows`, one dict per COLUMNS), per-step log metrics, alarms, and what was read."""

    rows: list[dict[str, Any]]
    log: list[dict[str, Any]]
    alarms: list[Alarm]
    inputs: Inputs
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sample:
    """One answer: its pair, answer group, reward as dumped, and (when known) raw reward and statuses."""

    source: str
    task: str
    group: str
    output: str
    score: float
    raw: float | None = None
    normalized: float | None = None
    parse_ok: bool = True
    judge_failed: bool = False


# ---- finding and reading the inputs -------------------------------------------------------------------
def _dump_dir(path: Path) -> bool:
    return path.is_dir() and any(p.stem.isdigit() for p in path.glob("*.jsonl"))


def find_inputs(run: Path, given: Inputs) -> Inputs:
    """Fill what was not given from the run folder's usual places (train-smoke / learn-smoke layout)."""
    found = dataclasses.replace(given)
    if found.rollouts is None:
        found.rollouts = next((run / d for d in ROLLOUT_DIRS if _dump_dir(run / d)), None)
    if found.val is None:
        found.val = next((run / d for d in VAL_DIRS if _dump_dir(run / d)), None)
    if found.log is None:
        found.log = next((run / f for f in LOG_FILES if (run / f).is_file()), None)
    if found.config is None:
        configs = sorted(run.glob("runs/*/hydra/.hydra/config.yaml")) + sorted(run.glob("**/.hydra/config.yaml"))
        found.config = next((c for c in configs if _is_grpo_config(c)), None)
    if found.stats is None and (run / "reward_stats.json").is_file():
        found.stats = run / "reward_stats.json"
    return found


def _is_grpo_config(path: Path) -> bool:
    try:
        return "medgrpo:" in path.read_text(encoding="utf-8") and "actor_rollout_ref:" in path.read_text(
            encoding="utf-8")
    except OSError:
        return False


def dump_files(folder: Path) -> list[tuple[int, Path]]:
    """(step, file) of a dump folder's <step>.jsonl files, by step."""
    return sorted((int(p.stem), p) for p in folder.glob("*.jsonl") if p.stem.isdigit())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            rows.append(row)
    return rows


def group_of(row: dict[str, Any]) -> str:
    """The answer group (the prompt's uid: verl's keys are <uid>_<rollout>_<output>), else the prompt text."""
    uid = row.get("uid")
    if isinstance(uid, str) and uid:
        parts = uid.rsplit("_", 2)
        return parts[0] if len(parts) == 3 else uid
    return str(row.get("input", ""))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def sample_of(row: dict[str, Any], where: str) -> tuple[Sample, Reference]:
    """A dump row as a Sample (raw/normalized/statuses when the row carries the reward manager's keys)."""
    try:
        ref = Reference.from_json(row["gts"])
        task = task_for_qa_type(ref.qa_type).name
        output, score = row["output"], _number(row["score"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: unreadable dump row: {err}") from None
    if not isinstance(output, str) or score is None:
        raise ValueError(f"{where}: unreadable dump row: 'output' must be text and 'score' a number")
    raw, normalized = _number(row.get("raw")), _number(row.get("normalized"))
    judge_failed = bool(row.get("caption_pairs")) and not row.get("judge_ok", 1)
    return Sample(ref.data_source, task, group_of(row), output, score, raw,
                  score if normalized is None else normalized, bool(row.get("parse_ok", 1)), judge_failed), ref


def rescorer(config: Path | None, stats: Path | None, judge: str) -> Any:
    """The run's reward scorer (its medgrpo.reward settings), the judge limited as `judge` says; None
    without a config."""
    if config is None:
        return None
    from omegaconf import OmegaConf

    from reward_fns.build import build_scorer
    from reward_fns.config import MedGRPORewardConfig

    settings = MedGRPORewardConfig.from_trainer_config(OmegaConf.load(config))
    norm = settings.normalization
    if stats is not None and norm.enabled:
        norm = dataclasses.replace(norm, stats_path=str(stats))
    judge_config = settings.judge
    if judge == "off":
        judge_config = dataclasses.replace(judge_config, enabled=False)
    elif judge == "cache":
        judge_config = dataclasses.replace(judge_config, backend="openai", base_url=UNREACHABLE, max_retries=0,
                                           timeout_s=2.0, deadline_s=5.0)
    return build_scorer(dataclasses.replace(settings, normalization=norm, judge=judge_config))


async def _rescore(scorer: Any, pending: list[tuple[Sample, Reference]]) -> list[Sample]:
    out = []
    for sample, ref in pending:
        outcome = await scorer.score(sample.output, ref)
        out.append(dataclasses.replace(sample, raw=outcome.raw, parse_ok=outcome.parse_ok,
                                       judge_failed=outcome.caption_pairs > 0 and not outcome.judge_ok))
    return out


def read_dumps(folder: Path, scorer: Any) -> dict[int, list[Sample]]:
    """{step: samples} of a dump folder; answers without a raw reward are rescored (when a scorer is given)."""
    steps: dict[int, list[Sample]] = {}
    for step, path in dump_files(folder):
        pending = [sample_of(row, f"{path}:{i}") for i, row in enumerate(read_jsonl(path), 1)]
        missing = [p for p in pending if p[0].raw is None]
        if missing and scorer is not None:
            done = iter(asyncio.run(_rescore(scorer, missing)))
            steps[step] = [next(done) if s.raw is None else s for s, _ in pending]
        else:
            steps[step] = [s for s, _ in pending]
    return steps


def read_log(path: Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    from reward_fns.train_log import read_file_log

    return read_file_log(path, LOG_KEYS)


# ---- the table -------------------------------------------------------------------------------------------
def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def pair_rows(split: str, step: int, samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """One row per (data_source, task) of one step's samples."""
    by_pair: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        by_pair[(s.source, s.task)].append(s)
    rows = []
    for (source, task), group in sorted(by_pair.items()):
        scores: dict[str, list[float]] = defaultdict(list)
        for s in group:
            scores[s.group].append(s.score)
        multi = [v for v in scores.values() if len(v) > 1]
        zero = sum(1 for v in multi if max(v) - min(v) <= EQUAL_TOL)
        raws = [s.raw for s in group if s.raw is not None]
        rows.append({
            "split": split, "step": step, "data_source": source, "task": task, "n": len(group),
            "raw": _mean(raws) if len(raws) == len(group) else math.nan,
            "normalized": _mean([s.normalized if s.normalized is not None else s.score for s in group]),
            "groups": len(multi), "zero_adv_share": zero / len(multi) if multi else math.nan,
            "response_chars": _mean([len(s.output) for s in group]),
            "parse_failures": sum(not s.parse_ok for s in group),
            "judge_failures": sum(s.judge_failed for s in group),
        })
    return rows


def pair_iqr(stats: Path | None) -> dict[tuple[str, str], float]:
    if stats is None:
        return {}
    from reward_fns.normalize import RewardStats

    loaded = RewardStats.load(stats)
    return {(src, task): s.iqr for src, tasks in loaded.stats.items() for task, s in tasks.items()}


# ---- alarms -----------------------------------------------------------------------------------------------
def _windows(values: Sequence[float], width: int) -> list[float]:
    return [_mean(values[i - width + 1:i + 1]) for i in range(width - 1, len(values))]


def series(rows: Iterable[dict[str, Any]], split: str, key: str) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """{(source, task): [(step, value)]} of one column, finite values only, by step."""
    out: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        value = row.get(key)
        if row["split"] == split and isinstance(value, int | float) and math.isfinite(value):
            out[(row["data_source"], row["task"])].append((row["step"], float(value)))
    return {pair: sorted(points) for pair, points in sorted(out.items())}


def drop_alarms(rows: list[dict[str, Any]], iqr: dict[tuple[str, str], float], t: Thresholds) -> list[Alarm]:
    """Pairs whose windowed mean raw reward fell below an earlier, non-overlapping window's by > IQR."""
    alarms = []
    for split in ("train", "val"):
        for pair, points in series(rows, split, "raw").items():
            steps, values = [p[0] for p in points], [p[1] for p in points]
            means = _windows(values, t.window)
            limit = max(iqr.get(pair, 0.0), t.min_drop)
            worst = (0.0, 0, 0)
            for k in range(t.window, len(means)):
                j = max(range(k - t.window + 1), key=lambda i: means[i])
                if means[j] - means[k] > worst[0]:
                    worst = (means[j] - means[k], j, k)
            fall, j, k = worst
            if fall > limit:
                alarms.append(Alarm("reward-drop", f"{split} {pair[0]}/{pair[1]}",
                                    f"mean raw reward {means[j]:.3f} (steps {steps[j]}-{steps[j + t.window - 1]}) "
                                    f"-> {means[k]:.3f} (steps {steps[k]}-{steps[k + t.window - 1]}): fell "
                                    f"{fall:.3f} > {limit:.3f} (calibration IQR, at least {t.min_drop})"))
    return alarms


def zero_adv_alarms(rows: list[dict[str, Any]], t: Thresholds) -> list[Alarm]:
    """Pairs whose share of all-equal-reward groups stayed >= the threshold over their last window."""
    alarms = []
    for pair, points in series(rows, "train", "zero_adv_share").items():
        last = points[-t.window:]
        if len(last) == t.window and all(v >= t.zero_adv for _, v in last):
            alarms.append(Alarm("zero-advantage", f"train {pair[0]}/{pair[1]}",
                                f"{', '.join(f'{v:.0%}' for _, v in last)} of answer groups had all-equal rewards "
                                f"at steps {last[0][0]}-{last[-1][0]} (>= {t.zero_adv:.0%}): no learning signal"))
    return alarms


def length_alarms(rows: list[dict[str, Any]], log: list[dict[str, Any]], t: Thresholds) -> list[Alarm]:
    """Response length (the log's tokens, overall; the dumps' characters, per pair) collapsing or growing."""
    tracks: dict[str, list[tuple[int, float]]] = {}
    logged = [(s["step"], float(s["response_length"])) for s in log if "response_length" in s]
    if logged:
        tracks["all answers (tokens)"] = logged
    for pair, points in series(rows, "train", "response_chars").items():
        tracks[f"{pair[0]}/{pair[1]} (characters)"] = points
    alarms = []
    for where, points in tracks.items():
        if len(points) < 2 * t.window:
            continue
        first = _mean([v for _, v in points[:t.window]])
        last = _mean([v for _, v in points[-t.window:]])
        change = (f"mean response length {first:.1f} (first {t.window} points) -> {last:.1f} (last {t.window}, "
                  f"steps {points[-t.window][0]}-{points[-1][0]})")
        if first > 0 and last < t.collapse * first:
            alarms.append(Alarm("length-collapse", f"train {where}", f"{change}: below {t.collapse:.0%} of the start"))
        elif first > 0 and last > t.growth * first:
            alarms.append(Alarm("length-growth", f"train {where}", f"{change}: above {t.growth:g}x the start"))
    return alarms


def find_alarms(rows: list[dict[str, Any]], log: list[dict[str, Any]], iqr: dict[tuple[str, str], float],
                thresholds: Thresholds) -> list[Alarm]:
    return drop_alarms(rows, iqr, thresholds) + zero_adv_alarms(rows, thresholds) + length_alarms(
        rows, log, thresholds)


# ---- the run ------------------------------------------------------------------------------------------------
def read_run(run: str | Path, given: Inputs | None = None, judge: str = "cache",
             thresholds: Thresholds = Thresholds()) -> Run:
    """Everything the curves show, read from a run folder (and/or the given inputs)."""
    inputs = find_inputs(Path(run), given or Inputs())
    if inputs.rollouts is None and inputs.val is None:
        raise FileNotFoundError(f"{run}: no rollout dumps (<step>.jsonl under {'/'.join(ROLLOUT_DIRS)}) and no "
                                "validation dumps; give --rollouts / --val (trainer.rollout_data_dir / "
                                "validation_data_dir)")
    notes = []
    try:
        scorer = rescorer(inputs.config, inputs.stats, judge)
    except ValueError as err:  # a config from another version of the reward settings, bad stats, ...
        scorer = None
        notes.append(f"{inputs.config}: cannot rebuild the run's reward settings ({' '.join(str(err).split())})")
    if scorer is None and inputs.rollouts is not None:
        notes.append("no usable run config (.hydra/config.yaml): training raw rewards are not rescored (NaN)")
    rows: list[dict[str, Any]] = []
    for split, folder in (("train", inputs.rollouts), ("val", inputs.val)):
        if folder is not None:
            for step, samples in read_dumps(folder, scorer).items():
                rows += pair_rows(split, step, samples)
    log = read_log(inputs.log)
    return Run(rows, log, find_alarms(rows, log, pair_iqr(inputs.stats), thresholds), inputs, notes)


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return buffer.getvalue()


def write_csv(run: Run, path: str | Path) -> None:
    write_text_atomic(path, to_csv(run.rows))


PANELS = (("raw", "raw reward"), ("normalized", "normalized reward (trainer's)"),
          ("zero_adv_share", "share of zero-advantage groups"), ("response_chars", "response length (chars)"))


def _smoothed(points: list[tuple[int, float]], width: int) -> list[tuple[int, float]]:
    """Trailing moving mean over `width` points (fewer at the start)."""
    values = [v for _, v in points]
    return [(step, _mean(values[max(0, i - width + 1):i + 1])) for i, (step, _) in enumerate(points)]


def plot(run: Run, path: str | Path, title: str = "", smooth: int = 3) -> None:
    """Four panels (raw, normalized, zero-advantage share, response length) over steps, one colour per
    (data_source, task): training rollouts as lines (moving mean over `smooth` points: a pair has few
    answers per step), validation points as markers on a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = sorted({(r["data_source"], r["task"]) for r in run.rows})
    colours = {pair: plt.get_cmap("tab10" if len(pairs) <= 10 else "tab20")(i) for i, pair in enumerate(pairs)}
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    for ax, (key, label) in zip(axes.flat, PANELS, strict=True):
        for split, style in (("train", {"linewidth": 1.2, "alpha": 0.8}),
                             ("val", {"linestyle": "--", "marker": "o", "linewidth": 1.0})):
            for pair, points in series(run.rows, split, key).items():
                points = _smoothed(points, smooth) if split == "train" else points
                ax.plot([p[0] for p in points], [p[1] for p in points], color=colours[pair], **style)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colours[p], label=f"{p[0]} {p[1]}") for p in pairs]
    handles += [plt.Line2D([], [], color="grey", label=f"train rollouts (mean of {smooth} steps)"),
                plt.Line2D([], [], color="grey", linestyle="--", marker="o", label="validation (greedy)")]
    fig.legend(handles=handles, loc="center right", fontsize=8)
    if run.alarms:
        fig.text(0.01, 0.005, "alarms: " + "; ".join(f"{a.kind} {a.where}" for a in run.alarms)[:240],
                 fontsize=7, color="#C44E52")
    fig.suptitle(title or "reward per (data_source, task)", fontsize=11)
    fig.tight_layout(rect=(0, 0.02, 0.84, 0.97))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def summary(run: Run) -> list[str]:
    """Per split and pair: first and last point of raw reward, zero-advantage share and length."""
    lines = []
    for split in ("train", "val"):
        raw = series(run.rows, split, "raw")
        zero = series(run.rows, split, "zero_adv_share")
        for pair, points in raw.items():
            z = zero.get(pair, [])
            zero_text = f"  zero-adv {z[0][1]:.0%} -> {z[-1][1]:.0%}" if z else ""
            lines.append(f"{split:<5} {pair[0]:<14} {pair[1]:<4} raw {points[0][1]:.3f} (step {points[0][0]}) -> "
                         f"{points[-1][1]:.3f} (step {points[-1][0]}){zero_text}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    t = Thresholds()
    p = argparse.ArgumentParser(prog="python -m reward_fns.curves", description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="run folder (train-smoke / learn-smoke --out, or a GPU run's)")
    p.add_argument("--out", help="PNG of the curves (default: none)")
    p.add_argument("--csv", help="CSV of the table (default: none)")
    p.add_argument("--log", help="verl file-logger JSONL (VERL_FILE_LOGGER_PATH)")
    p.add_argument("--rollouts", help="trainer.rollout_data_dir")
    p.add_argument("--val", help="trainer.validation_data_dir")
    p.add_argument("--config", help="the run's .hydra/config.yaml (its medgrpo.reward settings)")
    p.add_argument("--stats", help="the run's reward stats (calibration IQRs)")
    p.add_argument("--judge", choices=("cache", "off", "call"), default="cache",
                   help="judge for rescored caption answers (default: cache only)")
    p.add_argument("--window", type=int, default=t.window, help=f"alarm window in points (default {t.window})")
    p.add_argument("--min-drop", type=float, default=t.min_drop, help="smallest reward fall that alarms")
    p.add_argument("--zero-adv", type=float, default=t.zero_adv, help="zero-advantage share that alarms")
    p.add_argument("--collapse", type=float, default=t.collapse, help="length ratio (last/first) that alarms")
    p.add_argument("--growth", type=float, default=t.growth, help="length growth (last/first) that alarms")
    args = p.parse_args(argv)
    if args.window < 1:
        p.error("--window must be >= 1")
    given = Inputs(*(Path(v) if v else None for v in (args.rollouts, args.val, args.log, args.config, args.stats)))
    for name, value in dataclasses.asdict(given).items():
        if value is not None and not Path(value).exists():
            print(f"error: --{name} {value}: no such file or folder", file=sys.stderr)
            return 2
    try:
        run = read_run(args.run, given, args.judge, Thresholds(args.window, args.min_drop, args.zero_adv,
                                                                 args.collapse, args.growth))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for note in run.notes:
        print(f"note: {note}")
    print("\n".join(summary(run)))
    if args.csv:
        write_csv(run, args.csv)
        print(f"table -> {args.csv}")
    if args.out:
        plot(run, args.out)
        print(f"curves -> {args.out}")
    print(f"alarms: {len(run.alarms)}")
    for alarm in run.alarms:
        print(f"ALARM {alarm.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
