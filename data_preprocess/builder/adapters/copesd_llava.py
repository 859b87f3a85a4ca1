"""Boxes from CoPESD's released LLaVA-style JSON (`{"conversations": [...], "image": ".../high_light_images/
<folder>/<n>.jpg"}`, gpt answers naming tools as `Forceps[x1, y1, x2, y2]`, coordinates normalized 0-1).

Each image is placed in time through the intermediate file's video whose `frames` folder holds it:
time = (n - first_frame) / fps. One track per tool name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data_preprocess.builder.canonical import AnnotationError, Box, read_json

LLAVA_GLOB = "copesd_llava*.json"
_NUM = r"\s*([-\d.eE]+)\s*"
TOOL_BOX = re.compile(rf"([A-Za-z][\w-]*)\s*\[{_NUM},{_NUM},{_NUM},{_NUM}\]")  # Forceps[0.1, 0.2, 0.3, 0.4]


def _gpt_text(entry: Mapping[str, Any]) -> str:
    return "\n".join(str(t.get("value", "")) for t in entry.get("conversations") or []
                     if isinstance(t, Mapping) and t.get("from") == "gpt")


def llava_boxes(path: Path, folders: Mapping[str, tuple[str, float, int]]) -> dict[str, list[Box]]:
    """{video_id: boxes in normalized xyxy} from one LLaVA-style file; `folders` maps a frame folder
    (relative to --root) to (video_id, fps, first_frame). Images of unknown folders are an error."""
    data = read_json(path)
    out: dict[str, list[Box]] = {}
    for i, entry in enumerate(data if isinstance(data, list) else []):
        image = str(entry.get("image", "")) if isinstance(entry, Mapping) else ""
        folder = next((f for f in folders if f"{f}/" in f"/{image}" or image.startswith(f"{f}/")), None)
        if folder is None:
            raise AnnotationError(str(path), i, "image", f"{image!r} is in no frame folder of copesd_annotations.json")
        vid, fps, first = folders[folder]
        try:
            time = (int(Path(image).stem) - first) / fps
        except ValueError:
            raise AnnotationError(str(path), i, "image", f"file name of {image!r} is not a frame number") from None
        for label, *coords in TOOL_BOX.findall(_gpt_text(entry)):
            try:
                box = tuple(float(c) for c in coords)
            except ValueError:
                raise AnnotationError(str(path), i, "conversations", f"box {coords} holds a non-number") from None
            if not all(0 <= c <= 1 for c in box):
                raise AnnotationError(str(path), i, "conversations", f"box {list(box)} is not normalized to 0-1")
            out.setdefault(vid, []).append(Box(time, label.strip(), label.strip().lower(), box))
    return out
