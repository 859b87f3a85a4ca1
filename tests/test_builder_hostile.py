"""Hostile and careless inputs to the builder (issue 21): each case is a one-line error naming the file,
the entry and field or the flag, with a non-zero exit (2: bad input, config or flag; 1: an output cannot
be written), or is handled correctly; never a traceback, a hang, a silent drop or a lost file."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from data_preprocess.builder.cli import main
from reward_fns.tasks.sa import ASPECTS
from testbed import toy_sources as fx

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Ctx:
    tmp: Path
    config: Path

    def root(self, name: str, **kw) -> Path:
        """A fresh synthetic release of one source under tmp/rel/<name>."""
        root = self.tmp / "rel" / name
        if name == "nurvid":
            kw.setdefault("flat", True)  # the JSON and a Procedure&Action_ID.csv in --root itself
        if name == "jigsaws" or name == "cholec80_cvs":
            return fx.WRITERS[name](root, with_video=kw.pop("with_video", False))
        return fx.WRITERS[name](root, **kw)

    def args(self, name: str, root: Path, *extra: str, config: Path | None = None) -> list[str]:
        return ["--source", name, "--root", str(root), "--config", str(config or self.config), *extra]

    def config_with(self, edit: Callable[[dict], object]) -> Path:
        data = yaml.safe_load(self.config.read_text())
        edit(data)
        path = self.tmp / "edited.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        return path


@pytest.fixture
def ctx(tmp_path: Path) -> Ctx:
    return Ctx(tmp_path, fx.small_config(tmp_path / "config.yaml"))


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, fragment: str, status: int = 2) -> None:
    assert code == status, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment in err, err
    assert "Traceback" not in err


def edit_json(path: Path, edit: Callable[[object], object]) -> None:
    data = json.loads(path.read_text())
    new = edit(data)
    path.write_text(json.dumps(data if new is None else new))


def csv_text(header: list[str], rows: list[list[object]]) -> str:
    return "\n".join(",".join(str(v) for v in row) for row in [header, *rows]) + "\n"


# ---- the cases: (id, setup(ctx) -> argv without --out, message fragment, exit status) ------------------------
Setup = Callable[[Ctx], list[str]]
CASES: list[tuple[str, Setup, str, int]] = []


def case(case_id: str, fragment: str, status: int = 2) -> Callable[[Setup], Setup]:
    def register(fn: Setup) -> Setup:
        CASES.append((case_id, fn, fragment, status))
        return fn
    return register


def _ego(c: Ctx, **files: str) -> Path:
    """An EgoSurgery release with some of its CSVs replaced by the given text."""
    root = c.root("egosurgery")
    for name, text in files.items():
        (root / f"{name}.csv").write_text(text)
    return root


def _ego_phase(label: str) -> Setup:
    """EgoSurgery whose second phase has this label (written by the csv module, quoted as needed)."""
    def setup(c: Ctx) -> list[str]:
        root = c.root("egosurgery")
        fx.write_csv(root / "phases.csv", ["video_id", "start", "end", "phase"],
                     [[fx.EGO_ID, 0, 16, "disinfection"], [fx.EGO_ID, 16, 40, label]])
        return c.args("egosurgery", root, "--captions", "facts")
    return setup


def _canonical(c: Ctx, **change: object) -> list[str]:
    """A canonical folder with one CholecT50-like video (frames in a folder), fields replaced by `change`."""
    video = {"source": "CholecT50", "video_id": "V1", "fps": 1.0, "duration": 60.0, "width": 100, "height": 50,
             "frames": {"kind": "folder", "path": "f", "pattern": "{n:06d}.png"},
             "segments": [{"label": "preparation", "start": 0, "end": 30, "kind": "phase"},
                          {"label": "clipping-and-cutting", "start": 30, "end": 60, "kind": "phase"}],
             "boxes": [{"time": float(t), "label": "grasper", "track": "1", "xyxy": [1, 2, 30, 40]} for t in range(20)]}
    for key, value in change.items():
        node, *path = key.split(".")
        target = video
        for part in [node, *path][:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        last = [node, *path][-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    folder = c.tmp / "canon"
    folder.mkdir(exist_ok=True)
    (folder / "v.json").write_text(json.dumps([video]))
    return ["--source", "canonical", "--root", str(folder), "--config", str(c.config), "--captions", "facts"]


# -- 4: inputs and outputs never overlap ------------------------------------------------------------------
@case("out-is-an-annotation-file", "--out {rel}/avos/avos_segments.csv: overlaps")
def _(c: Ctx) -> list[str]:
    root = c.root("avos")
    return [*c.args("avos", root), "--out", str(root / "avos_segments.csv")]


@case("out-is-the-config", "overlaps the --config")
def _(c: Ctx) -> list[str]:
    return [*c.args("nurvid", c.root("nurvid")), "--out", str(c.config)]


@case("out-inside-the-canonical-root", "overlaps the canonical --root")
def _(c: Ctx) -> list[str]:
    argv = _canonical(c)
    return [*argv, "--out", str(c.tmp / "canon" / "train.json")]


@case("out-is-an-exclude-test-file", "overlaps the --exclude-test")
def _(c: Ctx) -> list[str]:
    (c.tmp / "test.json").write_text("[]")
    return [*c.args("nurvid", c.root("nurvid")), "--exclude-test", str(c.tmp / "test.json"),
            "--out", str(c.tmp / "test.json")]


@case("manifest-would-replace-an-input", "--out's manifest")
def _(c: Ctx) -> list[str]:
    (c.tmp / "t.manifest.json").write_text("[]")
    return [*c.args("nurvid", c.root("nurvid")), "--exclude-test", str(c.tmp / "t.manifest.json"),
            "--out", str(c.tmp / "t.json")]


@case("out-is-a-link-to-an-input", "overlaps")
def _(c: Ctx) -> list[str]:
    root = c.root("egosurgery")
    (c.tmp / "link.json").symlink_to(root / "phases.csv")
    return [*c.args("egosurgery", root), "--out", str(c.tmp / "link.json")]


@case("out-is-a-file-read-through-a-linked-folder", "overlaps the input file")
def _(c: Ctx) -> list[str]:
    real = c.root("cholect50")
    root = c.tmp / "linked"
    root.mkdir()
    for child in ("labels", "videos"):
        (root / child).symlink_to(real / child)
    return [*c.args("cholect50", root), "--out", str(real / "labels" / "VID01.json")]


@case("frames-out-is-the-root", "--frames-out")
def _(c: Ctx) -> list[str]:
    root = c.root("egosurgery")
    return [*c.args("egosurgery", root), "--frames-out", str(root)]


@case("frames-out-holds-the-root", "a folder holding inputs")
def _(c: Ctx) -> list[str]:
    root = c.root("nurvid")
    return [*c.args("nurvid", root), "--frames-out", str(c.tmp / "rel")]


@case("frames-out-inside-the-root", "--frames-out")
def _(c: Ctx) -> list[str]:
    root = c.root("cholect50")
    return [*c.args("cholect50", root), "--frames-out", str(root / "videos" / "frames")]


# -- 5: no str.format or evaluation of data or config text ---------------------------------------------------
def _copesd_entry(edit: Callable[[dict], None]) -> Setup:
    def setup(c: Ctx) -> list[str]:
        root = c.root("copesd")
        edit_json(root / "copesd_annotations.json", lambda d: edit(d[fx.COPESD_ID]))
        return c.args("copesd", root, "--captions", "facts")
    return setup


for _id, _pattern in [("pattern-huge-width", "{n:>5000}"), ("pattern-attribute", "{n.__class__.__name__}.jpg"),
                      ("pattern-index", "{n[0]}.jpg"), ("pattern-two-fields", "{n}_{n}.jpg"),
                      ("pattern-no-field", "0001.jpg"), ("pattern-escapes-root", "../../{n:04d}.jpg"),
                      ("pattern-conversion", "{n!r}.jpg")]:
    case(f"copesd-{_id}", "field 'frames.pattern'")(_copesd_entry(lambda e, p=_pattern: e.update(pattern=p)))


def _template(template: str, task: str = "TAG") -> Setup:
    def setup(c: Ctx) -> list[str]:
        cfg = c.config_with(lambda d: d["questions"][task].update(default=[template], CholecT50=[template]))
        return c.args("cholect50", c.root("cholect50"), config=cfg)
    return setup


for _id, _tmpl in [("attribute", "When is {label.__class__.__mro__}?"), ("format-spec", "When is {label:>99999}?"),
                   ("conversion", "When is {label!r}?"), ("positional", "When is {}?"), ("index", "When is {0}?"),
                   ("unknown-name", "When is {nothing}?"), ("stray-brace", "When is {label}}?"),
                   ("too-long", "x" * 1001)]:
    case(f"template-{_id}", "questions.TAG.")(_template(_tmpl))
case("template-object-in-a-tag-question",
     "placeholder(s) ['object'] not available here")(_template("Where is {object}?"))


# -- 6: ids and frame folders stay inside their roots --------------------------------------------------------
def _ego_id(video_id: str) -> Setup:
    def setup(c: Ctx) -> list[str]:
        root = _ego(c, videos=csv_text(["video_id", "fps", "duration", "width", "height"],
                                       [[video_id, 30, 60, 192, 108]]),
                    phases=csv_text(["video_id", "start", "end", "phase"], [[video_id, 0, 30, "incision"]]),
                    boxes=csv_text(["video_id", "time", "label", "track", "x1", "y1", "x2", "y2"],
                                   [[video_id, 0, "scissors", "s1", 1, 2, 3, 4]]))
        return c.args("egosurgery", root, "--frames-out", str(c.tmp / "data"))
    return setup


for _id, _vid in [("parent", "../../../x"), ("absolute", "/etc/passwd"), ("dot-dot", ".."), ("hidden", ".x"),
                  ("backslash", "..\\..\\x"), ("space-padded", " ego 01 ")]:
    case(f"egosurgery-id-{_id}", "field 'video_id'")(_ego_id(_vid))

for _id, _frames in [("absolute", "/etc"), ("parent", "../../outside"), ("backslash", "a\\..\\..\\b")]:
    case(f"copesd-frames-{_id}", "field 'frames'")(_copesd_entry(lambda e, f=_frames: e.update(frames=f)))


@case("canonical-video-path-absolute", "field 'frames.path'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, frames={"kind": "video", "path": "/etc/passwd"})


@case("canonical-source-not-medvidbench", "not a MedVidBench source")
def _(c: Ctx) -> list[str]:
    return _canonical(c, source="../../tmp")


@case("jigsaws-trial-escapes", "meta_file_Suturing.txt: entry 0: field 'trial'")
def _(c: Ctx) -> list[str]:
    root = c.root("jigsaws")
    (root / "Suturing" / "meta_file_Suturing.txt").write_text("../../../../etc/x\tN\t13\t2\t2\t2\t2\t2\t3\n")
    return c.args("jigsaws", root)


@case("nurvid-id-with-newline", "field 'video_id'")
def _(c: Ctx) -> list[str]:
    root = c.root("nurvid")
    edit_json(root / "NurViD_annotations.json", lambda d: {"a\nb": d[fx.NURVID_ID]})
    return c.args("nurvid", root)


# -- 7: labels are one line of text with no time headers -----------------------------------------------------
for _id, _label in [("newline-header", "incision\n10.0-20.0 seconds: forged event"),
                    ("inline-span", "incision 12-30 seconds"), ("stg-header", "scissors 5 seconds: [1, 2, 3, 4]"),
                    ("carriage-return", "incision\rclosure"), ("line-separator", "incision\u2028closure"),
                    ("escape-char", "incision\x1b[2J"), ("blank", "   "), ("huge", "x" * 5000),
                    ("zero-width", "inci\u200bsion")]:
    case(f"label-{_id}", "field 'segments[1].label'")(_ego_phase(_label))


@case("box-label-with-time-header", "field 'boxes[0].label'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, **{"boxes.0.label": "grasper 3-4 s"})


@case("procedure-with-newline", "field 'procedure'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, procedure="cholecystectomy\n0-5 seconds: x")


@case("config-procedure-with-newline", "sources.CholecT50.procedure")
def _(c: Ctx) -> list[str]:
    cfg = c.config_with(lambda d: d["sources"]["CholecT50"].update(procedure="x\n1-2 seconds: y"))
    return c.args("cholect50", c.root("cholect50"), config=cfg)


@case("cholect50-category-with-header", "details")
def _(c: Ctx) -> list[str]:
    root = c.root("cholect50")
    edit_json(root / "labels" / "VID01.json",
              lambda d: d["categories"]["instrument"].update({"0": "grasper\n0.0-9.0 seconds: forged"}))
    return c.args("cholect50", root, "--captions", "facts")


@case("copesd-motion-label-not-text", "copesd_annotations.json: entry case01_part1: field 'frames/motions/boxes'")
def _(c: Ctx) -> list[str]:
    return _copesd_entry(lambda e: e["motions"][0].update(label=True))(c)


@case("canonical-time-a-boolean", "field 'segments/boxes/scores/frames'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, **{"boxes.0.time": True})


@case("details-not-names", "field 'segments[0].details'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, **{"segments.0.details": {"instruments": "grasper"}})


# -- 8: environment: output folders that are not folders, read-only, full ---------------------------------------
@case("frames-out-is-a-file", "--frames-out")
def _(c: Ctx) -> list[str]:
    (c.tmp / "data").write_text("x")
    return c.args("nurvid", c.root("nurvid"), "--frames-out", str(c.tmp / "data"))


@case("frames-out-under-a-file", "is a file, not a folder")
def _(c: Ctx) -> list[str]:
    (c.tmp / "data").write_text("x")
    return c.args("nurvid", c.root("nurvid"), "--frames-out", str(c.tmp / "data" / "frames"))


@case("out-is-a-folder", "is a folder")
def _(c: Ctx) -> list[str]:
    (c.tmp / "o.json").mkdir()
    return [*c.args("nurvid", c.root("nurvid")), "--out", str(c.tmp / "o.json")]


@case("out-under-a-file", "is a file, not a folder")
def _(c: Ctx) -> list[str]:
    (c.tmp / "f").write_text("x")
    return [*c.args("nurvid", c.root("nurvid")), "--out", str(c.tmp / "f" / "o.json")]


# -- 9: value ranges per field, strict config ------------------------------------------------------------------
@case("cvs-score-7", "field 'scores[0].values.cystic_plate': must be >= 0 and <= 2, got 7")
def _(c: Ctx) -> list[str]:
    return _canonical(c, source="Cholec80-CVS", scores=[{"start": 0, "end": 20, "kind": "cvs", "values": {
        "two_structures": 1, "cystic_plate": 7, "hepatocystic_triangle": 0}}])


@case("cvs-score-fraction", "must be a whole number, got 1.5")
def _(c: Ctx) -> list[str]:
    return _canonical(c, source="Cholec80-CVS", scores=[{"start": 0, "end": 20, "kind": "cvs", "values": {
        "two_structures": 1.5, "cystic_plate": 1, "hepatocystic_triangle": 0}}])


@case("cvs-achieved-not-bool", "critical_view_achieved must be true or false")
def _(c: Ctx) -> list[str]:
    return _canonical(c, source="Cholec80-CVS", scores=[{"start": 0, "end": 20, "kind": "cvs", "extra": {
        "critical_view_achieved": "no"}, "values": {"two_structures": 1, "cystic_plate": 1,
                                                    "hepatocystic_triangle": 0}}])


@case("skill-score-6-and-level", "field 'scores[0].values.Time and motion'")
def _(c: Ctx) -> list[str]:
    values = {**dict.fromkeys(ASPECTS, 3), "Time and motion": 6}
    return _canonical(c, source="JIGSAWS", scores=[{"start": 0, "end": 20, "kind": "skill", "level": "N",
                                                   "values": values}])


@case("skill-level-unknown", "field 'scores[0].level'")
def _(c: Ctx) -> list[str]:
    values = dict.fromkeys(ASPECTS, 3)
    return _canonical(c, source="JIGSAWS", scores=[{"start": 0, "end": 20, "kind": "skill", "level": "X",
                                                   "values": values}])


@case("csv-score-1.7", "surgeons_annotations.csv: entry 0: field 'criteria'")
def _(c: Ctx) -> list[str]:
    root = c.tmp / "cvs"
    rows = [list(r) for r in fx.CVS_ROWS]
    rows[0][6] = 1.7
    fx.write_csv(root / "surgeons_annotations.csv", fx.CVS_HEADER, rows)
    return c.args("cholec80_cvs", root)


@case("csv-critical-view-2", "field 'critical view': must be 0 or 1")
def _(c: Ctx) -> list[str]:
    root = c.tmp / "cvs"
    rows = [list(r) for r in fx.CVS_ROWS]
    rows[0][9] = 2
    fx.write_csv(root / "surgeons_annotations.csv", fx.CVS_HEADER, rows)
    return c.args("cholec80_cvs", root)


@case("negative-frame-offset", "field 'frames.offset'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, frames={"kind": "folder", "path": "f", "offset": -300})


@case("copesd-negative-first-frame", "field 'first_frame'")
def _(c: Ctx) -> list[str]:
    return _copesd_entry(lambda e: e.update(first_frame=-5))(c)


@case("copesd-llava-image-before-first-frame", "field 'boxes[")
def _(c: Ctx) -> list[str]:
    root = c.root("copesd", llava=True)
    edit_json(root / "copesd_annotations.json", lambda d: d[fx.COPESD_ID].update(first_frame=10))
    return c.args("copesd", root)


@case("negative-segment-time", "field 'segments[0].start'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, **{"segments.0.start": -10})


@case("segment-ends-before-it-starts", "field 'segments[1].end'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, **{"segments.1.end": 5})


@case("negative-box-time", "field 'boxes[0].time'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, **{"boxes.0.time": -1})


@case("width-not-a-number", "field 'width'")
def _(c: Ctx) -> list[str]:
    return _canonical(c, width="wide")


def _config(edit: Callable[[dict], object]) -> Setup:
    def setup(c: Ctx) -> list[str]:
        return c.args("nurvid", c.root("nurvid"), config=c.config_with(edit))
    return setup


for _id, _edit, _frag in [
    ("unknown-top-level-key", lambda d: d.update(task_default={}), "unknown top-level key(s) ['task_default']"),
    ("kind-typo", lambda d: d["task_defaults"]["TAG"].update(kind="phsae"), "task_defaults.TAG.kind: 'phsae'"),
    ("horizon-negative", lambda d: d["task_defaults"]["NAP"].update(horizon=-30), "task_defaults.NAP.horizon"),
    ("stride-inf", lambda d: d["task_defaults"]["TAG"].update(stride=float("inf")), "task_defaults.TAG.stride"),
    ("clip-len-nan", lambda d: d["task_defaults"]["TAG"].update(clip_len=float("nan")), "task_defaults.TAG.clip_len"),
    ("fps-nan", lambda d: d["task_defaults"]["TAG"].update(fps=float("nan")), "task_defaults.TAG.fps"),
    ("min-span-negative", lambda d: d["task_defaults"]["TAG"].update(min_span=-1), "task_defaults.TAG.min_span"),
    ("box-stride-tiny", lambda d: d["task_defaults"]["STG"].update(box_stride=1e-9), "task_defaults.STG.box_stride"),
    ("cap-fraction", lambda d: d["sources"]["NurViD"]["tasks"]["TAG"].update(cap=1.7), "tasks.TAG.cap"),
    ("cap-negative", lambda d: d["sources"]["NurViD"]["tasks"]["TAG"].update(cap=-1), "tasks.TAG.cap"),
    ("cap-text", lambda d: d["sources"]["NurViD"]["tasks"]["TAG"].update(cap="100"), "tasks.TAG.cap"),
    ("min-boxes-bool", lambda d: d["task_defaults"]["STG"].update(min_boxes=True), "task_defaults.STG.min_boxes"),
    ("seed-text", lambda d: d.update(seed="abc"), "seed: must be a whole number"),
    ("unknown-source", lambda d: d["sources"].update(Cholec80CVS={}), "sources.Cholec80CVS: unknown source"),
    ("unknown-source-key", lambda d: d["sources"]["NurViD"].update(licence_url="x"), "['licence_url']"),
    ("bank-is-a-string", lambda d: d["questions"]["TAG"].update(default="When?"), "questions.TAG.default"),
    ("bank-unknown-source", lambda d: d["questions"]["TAG"].update(Nurvid=["x"]), "questions.TAG.Nurvid"),
    ("sources-a-list", lambda d: d.update(sources=["NurViD"]), "sources: must be a mapping"),
]:
    case(f"config-{_id}", _frag)(_config(_edit))


@case("config-is-a-list", "must be a mapping with keys")
def _(c: Ctx) -> list[str]:
    (c.tmp / "list.yaml").write_text("- seed: 0\n- sources: {}\n")
    return c.args("nurvid", c.root("nurvid"), config=c.tmp / "list.yaml")


@case("config-deeply-nested", "deep.yaml: YAML nested too deeply")
def _(c: Ctx) -> list[str]:
    (c.tmp / "deep.yaml").write_text("seed: " + "[" * 100_000 + "]" * 100_000 + "\n")
    return c.args("nurvid", c.root("nurvid"), config=c.tmp / "deep.yaml")


@case("limit-videos-negative", "--limit-videos: must be 0")
def _(c: Ctx) -> list[str]:
    return c.args("nurvid", c.root("nurvid"), "--limit-videos", "-1")


@case("all-yaml-root-not-text", "entry 0: needs source")
def _(c: Ctx) -> list[str]:
    (c.tmp / "all.yaml").write_text("sources:\n  - {source: nurvid, root: 5}\n")
    return ["--all", str(c.tmp / "all.yaml"), "--config", str(c.config)]


@case("all-yaml-unknown-key", "unknown key(s) ['video']")
def _(c: Ctx) -> list[str]:
    c.root("nurvid")
    (c.tmp / "all.yaml").write_text("sources:\n  - {source: nurvid, root: rel/nurvid, video: v}\n")
    return ["--all", str(c.tmp / "all.yaml"), "--config", str(c.config)]


# -- Also: encodings, broken spreadsheets, wrong JSON shapes, deep JSON, bad numbers, corrupt images --------------
@case("csv-not-utf8", "videos.csv: entry -: field '<file>': is not UTF-8 (byte 0xe9")
def _(c: Ctx) -> list[str]:
    root = c.root("egosurgery")
    (root / "videos.csv").write_bytes("video_id,fps,duration,procedure\nego_01,30,60,exérèse\n".encode("latin-1"))
    return c.args("egosurgery", root)


@case("csv-utf16", "is UTF-16 text; save it as UTF-8")
def _(c: Ctx) -> list[str]:
    root = c.root("egosurgery")
    (root / "phases.csv").write_bytes("video_id,start,end,phase\nego_01,0,5,incision\n".encode("utf-16"))
    return c.args("egosurgery", root)


@case("json-not-utf8", "NurViD_annotations.json: entry -: field '<file>': is not UTF-8")
def _(c: Ctx) -> list[str]:
    root = c.root("nurvid")
    path = root / "NurViD_annotations.json"
    path.write_bytes(path.read_bytes().replace(b"url", b"u\xffrl"))
    return c.args("nurvid", root)


@case("jigsaws-transcription-not-utf8", "Suturing_B001.txt: entry -: field '<file>': is not UTF-8")
def _(c: Ctx) -> list[str]:
    root = c.root("jigsaws")
    (root / "Suturing" / "transcriptions" / "Suturing_B001.txt").write_bytes(b"0 89 G1\xe9\n")
    return c.args("jigsaws", root)


def _xlsx(data: Callable[[bytes], bytes]) -> Setup:
    def setup(c: Ctx) -> list[str]:
        root = c.root("cholec80_cvs")
        path = root / "surgeons_annotations.xlsx"
        path.write_bytes(data(path.read_bytes()))
        return c.args("cholec80_cvs", root)
    return setup


def _zip_without_workbook(_: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return buf.getvalue()


case("xlsx-truncated", "not a readable .xlsx workbook")(_xlsx(lambda b: b[: len(b) // 2]))
case("xlsx-fake", "not a readable .xlsx workbook")(_xlsx(lambda b: b"Video,Initial Minute\n1,0\n"))
case("xlsx-empty", "not a readable .xlsx workbook")(_xlsx(lambda b: b""))
case("xlsx-zip-without-workbook", "not a readable .xlsx workbook")(_xlsx(_zip_without_workbook))


@case("nurvid-id-table-fake-xlsx", "Procedure&Action_ID.xlsx")
def _(c: Ctx) -> list[str]:
    root = c.root("nurvid")
    (root / "Procedure&Action_ID.csv").unlink()
    (root / "Procedure&Action_ID.xlsx").write_text("not a workbook")
    return c.args("nurvid", root)


def _json_shape(name: str, rel: str, edit: Callable[[object], object], **kw: object) -> Setup:
    def setup(c: Ctx) -> list[str]:
        root = c.root(name, **kw)
        edit_json(root / rel, edit)
        return c.args(name, root)
    return setup


for _id, _setup, _frag in [
    ("nurvid-top-level-list", _json_shape("nurvid", "NurViD_annotations.json", lambda d: [d]),
     "NurViD_annotations.json: entry -: field '<file>': must map"),
    ("nurvid-annotation-entry-list", _json_shape("nurvid", "NurViD_annotations.json",
                                                 lambda d: d[fx.NURVID_ID].update(annotations=[[1, 2]])),
     "NurViD_annotations.json: entry nurvid0000a.annotations[0]"),
    ("cholect50-top-level-list", _json_shape("cholect50", "labels/VID01.json", lambda d: [d]),
     "VID01.json: entry -: field 'annotations/categories'"),
    ("cholect50-annotations-list", _json_shape("cholect50", "labels/VID01.json",
                                               lambda d: d.update(annotations=[[0, 1]])),
     "VID01.json: entry -: field 'annotations/categories': must be objects"),
    ("cholect50-categories-list", _json_shape("cholect50", "labels/VID01.json",
                                              lambda d: d.update(categories=["phase"])),
     "VID01.json: entry -: field 'annotations/categories': must be objects"),
    ("cholectrack20-top-level-list", _json_shape("cholectrack20", "Training/VID02/VID02.json", lambda d: [d]),
     "VID02.json: entry -: field 'video/annotations'"),
    ("cholectrack20-video-list", _json_shape("cholectrack20", "Training/VID02/VID02.json",
                                             lambda d: d.update(video=[854, 480])),
     "VID02.json: entry -: field 'video/annotations': must be objects"),
    ("cholectrack20-annotations-list", _json_shape("cholectrack20", "Training/VID02/VID02.json",
                                                   lambda d: d.update(annotations=[{"instrument": 0}])),
     "VID02.json: entry -: field 'video/annotations': must be objects"),
    ("cholectrack20-frame-key-text", _json_shape("cholectrack20", "Training/VID02/VID02.json",
                                                 lambda d: d["annotations"].update(abc=[])), "VID02"),
    ("copesd-top-level-list", _json_shape("copesd", "copesd_annotations.json", lambda d: [d]),
     "copesd_annotations.json: entry -: field '<file>': must map"),
    ("avos-boxes-top-level-list", _json_shape("avos", "avos_boxes.json", lambda d: [d]),
     "avos_boxes.json: entry -: field 'width/height/boxes'"),
]:
    case(_id, _frag)(_setup)


def _deep(name: str, rel: str) -> Setup:
    def setup(c: Ctx) -> list[str]:
        root = c.root(name)
        (root / rel).write_text("[" * 100_000 + "]" * 100_000)
        return c.args(name, root)
    return setup


case("deep-json-nurvid", "nested too deeply")(_deep("nurvid", "NurViD_annotations.json"))
case("deep-json-copesd", "nested too deeply")(_deep("copesd", "copesd_annotations.json"))
case("deep-json-cholect50", "nested too deeply")(_deep("cholect50", "labels/VID01.json"))


@case("deep-json-canonical", "nested too deeply")
def _(c: Ctx) -> list[str]:
    argv = _canonical(c)
    (c.tmp / "canon" / "v.json").write_text("[" * 100_000 + "]" * 100_000)
    return argv


@case("deep-json-exclude-test", "nested too deeply")
def _(c: Ctx) -> list[str]:
    (c.tmp / "test.json").write_text("[" * 100_000 + "]" * 100_000)
    return c.args("nurvid", c.root("nurvid"), "--exclude-test", str(c.tmp / "test.json"))


for _id, _setup, _frag in [
    ("nurvid-fps-text", _json_shape("nurvid", "NurViD_annotations.json",
                                    lambda d: d[fx.NURVID_ID].update(fps="abc")), "field 'fps'"),
    ("nurvid-fps-zero", _json_shape("nurvid", "NurViD_annotations.json",
                                    lambda d: d[fx.NURVID_ID].update(fps=0)), "field 'fps'"),
    ("nurvid-duration-text", _json_shape("nurvid", "NurViD_annotations.json",
                                         lambda d: d[fx.NURVID_ID].update(duration="long")), "field 'duration'"),
    ("copesd-fps-zero", _copesd_entry(lambda e: e.update(fps=0)), "field 'fps'"),
    ("copesd-fps-text", _copesd_entry(lambda e: e.update(fps="abc")), "field 'fps'"),
    ("cholect50-fps-text", _json_shape("cholect50", "labels/VID01.json", lambda d: d.update(fps="abc")),
     "field 'fps'"),
    ("cholect50-fps-zero", _json_shape("cholect50", "labels/VID01.json", lambda d: d.update(fps=0)), "field 'fps'"),
    ("egosurgery-fps-text", lambda c: c.args("egosurgery", _ego(c, videos=csv_text(
        ["video_id", "fps", "duration"], [[fx.EGO_ID, "abc", 60]]))), "field 'fps'"),
    ("egosurgery-fps-inf", lambda c: c.args("egosurgery", _ego(c, videos=csv_text(
        ["video_id", "fps", "duration"], [[fx.EGO_ID, "inf", 60]]))), "field 'fps'"),
    ("egosurgery-time-nan", lambda c: c.args("egosurgery", _ego(c, phases=csv_text(
        ["video_id", "start", "end", "phase"], [[fx.EGO_ID, "nan", 5, "incision"]]))), "field 'start'"),
    ("canonical-fps-zero", lambda c: _canonical(c, fps=0), "field 'fps'"),
    ("canonical-duration-huge", lambda c: _canonical(c, duration=1e9), "field 'duration'"),
]:
    case(_id, _frag)(_setup)


@case("corrupt-png", "000000.png: entry -: field '<image>': not a readable image")
def _(c: Ctx) -> list[str]:
    root = c.root("cholect50")
    (root / "videos" / "VID01" / "000000.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return c.args("cholect50", root)


@case("corrupt-jpg-copesd", "0001.jpg: entry -: field '<image>'")
def _(c: Ctx) -> list[str]:
    root = c.root("copesd")
    (root / "high_light_images" / "023521" / "0001.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return c.args("copesd", root)


@case("exclude-test-is-a-folder", "not a regular file")
def _(c: Ctx) -> list[str]:
    (c.tmp / "tests").mkdir()
    return c.args("nurvid", c.root("nurvid"), "--exclude-test", str(c.tmp / "tests"))


@case("config-is-a-folder", "not a regular file")
def _(c: Ctx) -> list[str]:
    (c.tmp / "cfg").mkdir()
    return c.args("nurvid", c.root("nurvid"), config=c.tmp / "cfg")


@case("csv-field-over-the-csv-limit", "not a readable CSV")
def _(c: Ctx) -> list[str]:
    return c.args("egosurgery", _ego(c, phases='video_id,start,end,phase\nego_01,0,5,"' + "x" * 200_000 + '"\n'))


@pytest.mark.parametrize(("setup", "fragment", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_a_one_line_error(ctx: Ctx, capsys: pytest.CaptureFixture[str], setup: Setup,
                                           fragment: str, status: int) -> None:
    argv = setup(ctx)
    if "--out" not in argv:
        argv += ["--out", str(ctx.tmp / "out" / "train.json")]
    out = Path(argv[argv.index("--out") + 1])
    outputs = (out, out.with_name(out.stem + ".manifest.json"))
    before = [p.read_bytes() if p.is_file() else None for p in outputs]
    inputs = {p: p.read_bytes() for p in ctx.tmp.rglob("*") if p.is_file() and not p.is_symlink()}
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, fragment.replace("{rel}", str(ctx.tmp / "rel")), status)
    assert [p.read_bytes() if p.is_file() else None for p in outputs] == before  # nothing written or replaced
    for path, data in inputs.items():  # every file there before is untouched
        assert path.read_bytes() == data, path


def test_case_count() -> None:
    """The figure docs/benchmarks.md reports (kept honest)."""
    assert len(CASES) >= 100


# ---- hangs: bounded work per record and per file -------------------------------------------------------------
def run_subprocess(argv: list[str], timeout: float = 120, preexec: Callable[[], None] | None = None,
                   wrap: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process (a hang is a timeout, not a stuck test run)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cmd = [*(wrap or []), sys.executable, "-m", "data_preprocess.builder", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=preexec,
                          cwd=REPO)


def test_nurvid_duration_1e9_is_refused_at_once(ctx: Ctx) -> None:
    root = ctx.root("nurvid")
    edit_json(root / "NurViD_annotations.json", lambda d: d[fx.NURVID_ID].update(duration=1e9))
    done = run_subprocess([*ctx.args("nurvid", root), "--out", str(ctx.tmp / "o.json")], timeout=60)
    assert done.returncode == 2 and "field 'duration': must be > 0 and <= 86400" in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_pipe_as_config_or_test_file_is_refused_without_reading(ctx: Ctx) -> None:
    os.mkfifo(ctx.tmp / "fifo")
    root = ctx.root("nurvid")
    for argv in (ctx.args("nurvid", root, config=ctx.tmp / "fifo"),
                 ctx.args("nurvid", root, "--exclude-test", str(ctx.tmp / "fifo"))):
        done = run_subprocess([*argv, "--out", str(ctx.tmp / "o.json")], timeout=60)
        assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr


def test_stg_on_a_day_long_video_with_many_boxes_is_quick(ctx: Ctx) -> None:
    """Bounded work: 24 h of 1 fps boxes for one track (86,400 boxes) builds in seconds."""
    import time

    boxes = [{"time": float(t), "label": "grasper", "track": "1", "xyxy": [1, 2, 30, 40]} for t in range(86_400)]
    argv = _canonical(ctx, duration=86_400.0, boxes=boxes, segments=[])
    cfg = ctx.config_with(lambda d: d["sources"].update(CholecT50={"tasks": {"STG": {"cap": 1}}}))
    argv[argv.index("--config") + 1] = str(cfg)
    started = time.perf_counter()
    assert main([*argv, "--out", str(ctx.tmp / "o.json")]) == 0
    assert time.perf_counter() - started < 60
    assert len(json.loads((ctx.tmp / "o.json").read_text())) == 8640


# ---- the environment: read-only and full outputs are errors with a non-zero exit, nothing lost ---------------------
def _unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


def _ego_with_video(c: Ctx) -> list[str]:
    root = fx.egosurgery(c.tmp / "rel" / "egosurgery", c.tmp / "videos")
    return c.args("egosurgery", root, "--videos", str(c.tmp / "videos"))


def _read_only(folder: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI with `folder` read-only: chmod for a normal user, a read-only bind mount for root."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return run_cli(argv, capsys)
        finally:
            folder.chmod(0o755)
    if not _unshare():
        pytest.skip("running as root without user namespaces: no way to make a folder read-only")
    wrap = ["unshare", "-rm", "sh", "-c", f'mount --bind "{folder}" "{folder}" && '
            f'mount -o remount,ro,bind "{folder}" "{folder}" && exec "$@"', "sh"]
    done = run_subprocess(argv, wrap=wrap)
    return done.returncode, done.stderr


def test_read_only_frames_out_is_an_error_not_unreadable_videos(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    frames = ctx.tmp / "data"
    frames.mkdir()
    code, err = _read_only(frames, [*_ego_with_video(ctx), "--frames-out", str(frames), "--out",
                                    str(ctx.tmp / "o.json")], capsys)
    assert_one_line_error(code, err, f"--frames-out {frames}: cannot write", status=1)
    assert not (ctx.tmp / "o.json").exists()


def test_read_only_out_folder_is_an_error(ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    (ctx.tmp / "out").mkdir()
    code, err = _read_only(ctx.tmp / "out", [*ctx.args("nurvid", ctx.root("nurvid")), "--out",
                                             str(ctx.tmp / "out" / "o.json")], capsys)
    assert_one_line_error(code, err, "--out", status=1)


def _fsize_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_while_writing_out_keeps_the_previous_outputs(ctx: Ctx) -> None:
    argv = [*ctx.args("nurvid", ctx.root("nurvid")), "--out", str(ctx.tmp / "out" / "o.json")]
    assert main(argv) == 0
    previous = {p.name: p.read_bytes() for p in (ctx.tmp / "out").iterdir()}
    done = run_subprocess([*argv, "--seed", "3"], preexec=_fsize_limit(2000))  # the records are ~5 KB
    assert done.returncode == 1 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert "cannot write" in done.stderr and "nothing was replaced" in done.stderr
    assert {p.name: p.read_bytes() for p in (ctx.tmp / "out").iterdir()} == previous  # no temp file left


def test_a_full_frames_out_stops_the_build_and_keeps_the_previous_outputs(ctx: Ctx) -> None:
    frames = ctx.tmp / "data"
    argv = [*_ego_with_video(ctx), "--out", str(ctx.tmp / "o.json")]
    assert main([*argv, "--frames-out", str(ctx.tmp / "first")]) == 0
    previous = (ctx.tmp / "o.json").read_bytes()
    frames.mkdir()
    if _unshare():  # a real full disk: a 48 KB tmpfs (the frames need about 150 KB)
        script = (f'mount -t tmpfs -o size=48k tmpfs "{frames}" && "$@"; rc=$?; '
                  f'echo "left: $(find "{frames}" -name "*.tmp" | wc -l)" >&2; exit $rc')
        done = run_subprocess([*argv, "--frames-out", str(frames)], wrap=["unshare", "-rm", "sh", "-c", script, "sh"])
        assert "left: 0" in done.stderr  # no half-written frame
        message = done.stderr.splitlines()[0]
        assert "No space left on device" in message
    else:  # a file-size limit: the first frame larger than 1 KB fails (EFBIG)
        done = run_subprocess([*argv, "--frames-out", str(frames)], preexec=_fsize_limit(1000))
        message = done.stderr.strip()
        assert done.stderr.count("\n") == 1
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot write frames" in message and "frames_" in message
    assert (ctx.tmp / "o.json").read_bytes() == previous


# ---- corrupt .done markers are never trusted: the folder listing is -----------------------------------------------
@pytest.mark.parametrize("marker", [b"abc", b"", b"99999", b"\xff\xfe1", b"-3", b"1e3"])
def test_a_corrupt_done_marker_is_redone(ctx: Ctx, marker: bytes) -> None:
    frames = ctx.tmp / "data"
    argv = [*_ego_with_video(ctx), "--frames-out", str(frames), "--out", str(ctx.tmp / "o.json")]
    assert main(argv) == 0
    first = (ctx.tmp / "o.json").read_bytes()
    done_files = sorted(frames.rglob(".done"))
    good = {p: p.read_bytes() for p in done_files}
    removed = []
    for path in done_files:  # a corrupt marker and a missing frame: the marker must not hide the gap
        path.write_bytes(marker)
        removed.append(sorted(path.parent.glob("*.jpg"))[-1])
        removed[-1].unlink()
    assert main(argv) == 0
    manifest = json.loads((ctx.tmp / "o.manifest.json").read_text())
    assert manifest["frames"]["written"] == len(removed) and manifest["records"] > 0
    assert all(p.is_file() for p in removed)
    assert (ctx.tmp / "o.json").read_bytes() == first
    assert {p: p.read_bytes() for p in done_files} == good


# ---- the rules themselves ------------------------------------------------------------------------------------
def test_every_leaderboard_class_name_and_fixture_label_is_a_valid_label() -> None:
    from data_preprocess.builder.validate import text_problem
    from reward_fns.tasks.nap import class_table

    def names(node: object):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for k, v in node.items():
                yield k
                yield from names(v)
        elif isinstance(node, list):
            for v in node:
                yield from names(v)

    labels = {*names(class_table()), *fx.CT50_PHASES, "grasper,retract,gallbladder", "G1", "Moisten hair",
              "dissect flap with knife", "null_verb", "carlot-triangle-dissection", "skin lesion excision"}
    assert len(labels) > 200
    assert [(n, text_problem(n)) for n in labels if text_problem(n)] == []


@pytest.mark.parametrize("template", ["{label.__class__.__mro__}", "{label!r}", "{label:>999}", "{0}", "{}",
                                      "{label[0]}", "{{label}}"])
def test_render_never_evaluates(template: str) -> None:
    from data_preprocess.builder.validate import render, template_problem

    assert template_problem(template, ["label"])
    assert render(template, {"label": "grasper"}) == template.replace("{label}", "grasper")


def test_frame_name_fills_one_field_only() -> None:
    from data_preprocess.builder.validate import frame_name, pattern_problem

    assert frame_name("{n:06d}.png", 42) == "000042.png" and frame_name("img_{n}.jpg", 7) == "img_7.jpg"
    assert frame_name("{n:04d}.jpg", 123456) == "123456.jpg"
    assert not pattern_problem("sub/{n:04d}.jpg") and not pattern_problem("{n:d}.png")
    with pytest.raises(ValueError):
        frame_name("{n:04d}.jpg", -1)


# ---- the released layouts (issue 22 adapters) keep ids and paths inside --root -----------------------------------
@pytest.mark.parametrize(("image", "fragment"), [
    ("x/high_light_images/../0001.jpg", "field 'image': folder '..' is not a plain file name"),
    ("x/high_light_images//0001.jpg", "field 'image': folder must be 1 to"),
    ("x/high_light_images/a\nb/0001.jpg", "is not a plain file name"),
    ("x/high_light_images/023521/" + "9" * 5000 + ".jpg", "is not a frame number (1-12 digits)"),
])
def test_copesd_release_image_paths_stay_inside_the_root(ctx: Ctx, capsys: pytest.CaptureFixture[str],
                                                          image: str, fragment: str) -> None:
    root = fx.copesd_release(ctx.tmp / "rel" / "copesd", seconds=5)
    edit_json(root / "copesd_llava_train.json", lambda d: [{**d[0], "image": image}, *d[1:]])
    code, err = run_cli([*ctx.args("copesd", root), "--out", str(ctx.tmp / "o.json")], capsys)
    assert_one_line_error(code, err, fragment)
