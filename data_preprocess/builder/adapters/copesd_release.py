"""CoPESD as distributed: frame folders `high_light_images/<folder>/<n>.jpg` and LLaVA-style JSON lists whose
entries each describe one image: `{"image": ".../high_light_images/<folder>/<n>.jpg", "conversations":
[human: the surgical motion as an instruction, gpt: the tool placement with `Tool[x1, y1, x2, y2]` boxes
normalized 0-1]}`.

One folder = one video (video_id = the folder name); image n shows time (n - first) / `FPS` with `first`
the folder's lowest number (the release does not state a frame rate: 1 fps is an assumption). Each image's
instruction is mapped to one of the leaderboard's 8 CoPESD motion classes by `MOTION_RULES` (or by the
user's `copesd_motion_map.json` under --root: `{"regex": "class", ...}`, tried first); consecutive images of
one class make a motion segment. An instruction matching no rule leaves its image without a motion
(counted in the manifest's warnings), never a made-up label.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data_preprocess.builder.adapters.base import SourceRead, image_size
from data_preprocess.builder.adapters.copesd_llava import TOOL_BOX, _gpt_text
from data_preprocess.builder.canonical import AnnotationError, Box, FrameSource, Segment, Video, read_json
from data_preprocess.builder.validate import id_problem
from reward_fns.tasks.nap import canonical, class_table

FPS = 1.0
IMAGES = "high_light_images"
RELEASE_GLOBS = ("copesd_llava*.json", "smllm*.json", "annotations/**/*.json")
USER_MAP = "copesd_motion_map.json"

_BOTH = "both"  # placeholder: the class depends on whether the knife is named too


def _rule(pattern: str, with_knife: str, forceps_only: str | None = None) -> tuple[re.Pattern[str], str, str]:
    return re.compile(pattern), with_knife, forceps_only or with_knife


# Ordered: the first rule whose pattern matches the lower-cased instruction decides (knife named or not).
MOTION_RULES = (
    _rule(r"\bcamera\b|\bendoscope\b|field of view", "adjust camera"),
    _rule(r"dissect|\bcut|incis|resect|separat|\btrim", "dissect flap tissue with knife"),
    _rule(r"retract|pull\w* back|backward|draw\w* back|\bdrag", "retract flap edge with forceps and knife",
          "retract flap edge with forceps only"),
    _rule(r"\blift|\brais|elevat|expos|hoist", "retract flap edge with forceps and knife", "lift flap with forceps"),
    _rule(r"\bhold|stabili|steady|\bsecur|\bfix", "stabilize flap with forceps"),
    _rule(r"position|\bmov|adjust|\bplac|manipulat|\bshift|\bdirect|navigat|rotat",
          "position flap with forceps and knife", "position flap with forceps only"),
)


def motion_class(text: str, user: Sequence[tuple[re.Pattern[str], str]] = ()) -> str | None:
    """The CoPESD motion class an instruction describes, or None."""
    lowered = " ".join(text.lower().split())
    for pattern, label in user:
        if pattern.search(lowered):
            return label
    knife = "knife" in lowered
    for pattern, with_knife, forceps_only in MOTION_RULES:
        if pattern.search(lowered):
            return with_knife if knife else forceps_only
    return None


def user_rules(root: Path) -> list[tuple[re.Pattern[str], str]]:
    """`copesd_motion_map.json` ({regex: class}); classes must be leaderboard classes or their old names."""
    path = root / USER_MAP
    if not path.is_file():
        return []
    data = read_json(path)
    if not isinstance(data, Mapping):
        raise AnnotationError(str(path), "-", "<file>", "must map regular expressions to motion classes")
    known = set(class_table()["CoPESD"])
    out = []
    for pattern, label in data.items():
        label = canonical("CoPESD", str(label))
        if label not in known:
            raise AnnotationError(str(path), pattern, "class", f"{label!r} is not a CoPESD class {sorted(known)}")
        try:
            out.append((re.compile(str(pattern).lower()), label))
        except re.error as exc:
            raise AnnotationError(str(path), pattern, "pattern", f"not a regular expression ({exc})") from None
    return out


def release_files(root: Path) -> list[Path]:
    return sorted({p for glob in RELEASE_GLOBS for p in root.glob(glob) if p.is_file()})


def _human_text(entry: Mapping[str, Any]) -> str:
    return "\n".join(str(t.get("value", "")) for t in entry.get("conversations") or []
                     if isinstance(t, Mapping) and t.get("from") == "human").replace("<image>", " ")


def _image_key(image: str, where: str, i: int) -> tuple[str, int, str]:
    """(folder, frame number, digits) of `.../high_light_images/<folder>/<n>.jpg`."""
    parts = image.replace("\\", "/").split("/")
    if IMAGES not in parts or len(parts) < parts.index(IMAGES) + 3:
        raise AnnotationError(where, i, "image", f"{image!r} is not under {IMAGES}/<folder>/")
    folder, stem = parts[parts.index(IMAGES) + 1], Path(parts[-1]).stem
    if problem := id_problem(folder):  # the folder is the video id and a path under --root
        raise AnnotationError(where, i, "image", f"folder {problem}")
    if not (stem.isdigit() and stem.isascii() and len(stem) <= 12):
        raise AnnotationError(where, i, "image", f"file name of {image[:80]!r} is not a frame number (1-12 digits)")
    return folder, int(stem), stem


def _segments(frames: Mapping[int, str | None], first: int) -> list[Segment]:
    """Runs of one motion over consecutive image numbers; image n covers [(n - first) / FPS, + 1 / FPS)."""
    out: list[Segment] = []
    last = None
    for n in sorted(frames):
        label = frames[n]
        if label is not None:
            start, end = (n - first) / FPS, (n - first + 1) / FPS
            if out and out[-1].label == label and last == n - 1:
                out[-1] = Segment(label, out[-1].start, end, "motion")
            else:
                out.append(Segment(label, start, end, "motion"))
        last = n
    return out


def read_release(root: Path, files: list[Path]) -> SourceRead:
    out = SourceRead([], list(files))
    user = user_rules(root)
    if user:
        out.files.append(root / USER_MAP)
    motions: dict[str, dict[int, str | None]] = defaultdict(dict)
    boxes: dict[str, dict[tuple[int, str], tuple[float, ...]]] = defaultdict(dict)
    digits: dict[str, Counter[int]] = defaultdict(Counter)
    for path in files:
        data = read_json(path)
        if not isinstance(data, list):
            raise AnnotationError(str(path), "-", "<file>", "must be a JSON list of {image, conversations}")
        for i, entry in enumerate(data):
            if not isinstance(entry, Mapping) or "image" not in entry:
                raise AnnotationError(str(path), i, "image", "missing")
            folder, n, stem = _image_key(str(entry["image"]), str(path), i)
            digits[folder][len(stem)] += 1
            label = motion_class(_human_text(entry), user)
            if label is None:
                out.warnings["CoPESD instructions matching no motion class (image left without a motion)"] += 1
            previous = motions[folder].get(n, label)
            if previous is not None and label is not None and previous != label:
                out.warnings["CoPESD images described twice with different motions (first kept)"] += 1
            motions[folder][n] = previous if previous is not None else label
            for name, *coords in TOOL_BOX.findall(_gpt_text(entry)):
                box = tuple(float(c) for c in coords)
                if not all(0 <= c <= 1 for c in box):
                    raise AnnotationError(str(path), i, "conversations", f"box {list(box)} is not normalized to 0-1")
                boxes[folder].setdefault((n, name.strip()), box)
    for folder in sorted(motions):
        frame_dir = root / IMAGES / folder
        on_disk = [int(p.stem) for p in frame_dir.glob("*.jpg") if p.stem.isdigit()]
        if not on_disk:
            out.warnings[f"CoPESD folders without images under {IMAGES}/ (left out)"] += 1
            continue
        first = min([*on_disk, *motions[folder]])
        width, height = image_size(frame_dir, (1920, 1080))
        video_boxes = [Box((n - first) / FPS, name, name.lower(),
                           (b[0] * width, b[1] * height, b[2] * width, b[3] * height))
                       for (n, name), b in sorted(boxes[folder].items())]
        last = max([*on_disk, *motions[folder]])
        pattern = f"{{n:0{digits[folder].most_common(1)[0][0]}d}}.jpg"
        frames = FrameSource("folder", f"{IMAGES}/{folder}", pattern, FPS, first, FPS)
        out.videos.append(Video("CoPESD", folder, FPS, (last - first + 1) / FPS, frames, width, height,
                                "endoscopic submucosal dissection", _segments(motions[folder], first), video_boxes))
    return out
