"""Field rules of the builder, in one place: what a label, an id, a relative path, a frame-file pattern, a
question template and a number may be, reading text files, and the safe placeholder substitution that
replaces `str.format` for data and config text.

Each `*_problem` function returns '' for a good value, else the reason (callers add the file, entry and
field); nothing here evaluates data or config text.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

MAX_DURATION = 24 * 3600.0  # seconds: the longest video (and the latest time) the builder accepts
MAX_FPS = 1000.0
MAX_LABEL = 200  # characters of a label, object name or procedure
MAX_ID = 128  # characters of a video id
MAX_PATH = 1024
MAX_TEMPLATE = 1000  # characters of a question template
MAX_PLACEHOLDERS = 10  # per question template
MAX_FRAME_NUMBER = 10**9
MAX_FILE_BYTES = 1 << 30  # an annotation, config or test file

_ID = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]*")
_NUM = r"\d+(?:\.\d*)?"
# What the scorer's parsers read as times: `S-E seconds` (TAG/DVC spans) and `T seconds:` (STG/DVC headers).
_TIME_HEADER = re.compile(rf"{_NUM}\s*(?:[-–—]|to)\s*{_NUM}\s*(?:s|secs?|seconds?)\b|{_NUM}\s*(?:s|secs?|seconds?)\s*:",
                          re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_FRAME_FIELD = re.compile(r"\{n(?::(?:0(\d{1,2}))?d)?\}")


def _bad_char(text: str) -> str:
    """The first control, line-separator or invisible formatting character, described; '' if none."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            kind = "a line break" if ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029" else "a control character"
            return f"holds {kind} (U+{ord(ch):04X})"
    return ""


def text_problem(value: object, max_len: int = MAX_LABEL) -> str:
    """A label, object name or procedure: one line of visible text, at most `max_len` characters, with no
    control characters and nothing the scorer would read as a time (`12-30 seconds`, `5 seconds:`)."""
    if not isinstance(value, str):
        return "missing" if value is None else f"must be text, got {type(value).__name__}"
    if not value.strip():
        return "is empty"
    if len(value) > max_len:
        return f"is {len(value)} characters long (at most {max_len})"
    bad = _bad_char(value)
    if bad:
        return bad
    match = _TIME_HEADER.search(value)
    if match:
        return f"holds a time header {match.group(0)!r} that answers would parse as a time"
    return ""


def id_problem(value: object) -> str:
    """A video id: one file-name part (letters, digits, `_ - + .`, not starting with a dot), so the frame
    folder `<Source>/frames_<fps>fps/<id>` stays inside the data root."""
    if not isinstance(value, str):
        return "missing" if value is None else f"must be text, got {type(value).__name__}"
    if not 1 <= len(value) <= MAX_ID:
        return f"must be 1 to {MAX_ID} characters, got {len(value)}"
    if not _ID.fullmatch(value):
        return (f"{value[:40]!r} is not a plain file name (letters, digits, '_', '-', '+', '.'; not starting "
                "with '.'; no '/', '\\' or '..')")
    return ""


def relpath_problem(value: object) -> str:
    """A path relative to a root that stays inside it: not absolute, no `..` part, no backslash or control
    character."""
    if not isinstance(value, str):
        return "missing" if value is None else f"must be text, got {type(value).__name__}"
    if not value.strip() or len(value) > MAX_PATH:
        return f"must be 1 to {MAX_PATH} characters"
    bad = _bad_char(value)
    if bad:
        return bad
    if "\\" in value:
        return f"{value[:60]!r} holds a backslash (use '/')"
    path = PurePosixPath(value)
    if path.is_absolute() or re.match(r"[A-Za-z]:", value) or value.startswith("~"):
        return f"{value[:60]!r} is absolute; it must be relative to its root"
    if ".." in path.parts:
        return f"{value[:60]!r} leaves its root ('..')"
    return ""


def pattern_problem(value: object) -> str:
    """A frame-file pattern: exactly one `{n}`, `{n:d}` or `{n:0Wd}` (W 1 to 12) field, no other braces, and
    a relative path once filled in."""
    if not isinstance(value, str):
        return "missing" if value is None else f"must be text, got {type(value).__name__}"
    fields = list(_FRAME_FIELD.finditer(value))
    if len(fields) != 1:
        return f"{value[:60]!r} must hold exactly one frame-number field {{n}}, {{n:d}} or {{n:06d}}"
    width = fields[0].group(1)
    if width is not None and not 1 <= int(width) <= 12:
        return f"{value[:60]!r}: frame-number width must be 1 to 12"
    rest = value[:fields[0].start()] + "0" + value[fields[0].end():]
    if "{" in rest or "}" in rest:
        return f"{value[:60]!r} holds braces other than the one frame-number field"
    return relpath_problem(rest)


def frame_name(pattern: str, n: int) -> str:
    """The pattern (checked by `pattern_problem`) filled with frame number n (a non-negative integer)."""
    match = _FRAME_FIELD.search(pattern)
    if match is None or n < 0:
        raise ValueError(f"frame pattern {pattern!r} with n={n}")
    width = match.group(1)
    digits = str(n) if width is None else str(n).rjust(int(width), "0")
    return pattern[:match.start()] + digits + pattern[match.end():]


def template_problem(template: object, allowed: Iterable[str]) -> str:
    """A question template: text of at most MAX_TEMPLATE characters whose only braces are placeholders
    `{name}` from `allowed` (at most MAX_PLACEHOLDERS of them)."""
    if not isinstance(template, str):
        return f"must be text, got {type(template).__name__}"
    if not template.strip() or len(template) > MAX_TEMPLATE:
        return f"must be 1 to {MAX_TEMPLATE} characters"
    bad = _bad_char(template)
    if bad:
        return bad
    names = _PLACEHOLDER.findall(template)
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        return f"placeholder(s) {unknown} not available here; available: {sorted(allowed)}"
    if len(names) > MAX_PLACEHOLDERS:
        return f"{len(names)} placeholders (at most {MAX_PLACEHOLDERS})"
    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        return "holds a brace that is not a plain placeholder like {label} (no format specs, attributes or indexes)"
    return ""


def render(template: str, values: Mapping[str, object]) -> str:
    """The template (checked by `template_problem`) with each `{name}` replaced by str(values[name]).
    Nothing is evaluated: values are inserted as text, once."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(name)
        return str(values[name])

    return _PLACEHOLDER.sub(fill, template)


def number_problem(value: object, low: float = 0.0, high: float = math.inf, *, above: bool = False) -> str:
    """A finite number (not a bool or a string) in [low, high] ((low, high] when `above`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if value < low or (above and value == low) or value > high:
        lo = f"> {low:g}" if above else f">= {low:g}"
        return f"must be {lo}" + (f" and <= {high:g}" if high != math.inf else "") + f", got {value!r}"
    return ""


def integer_problem(value: object, low: int, high: int | float = math.inf) -> str:
    """A whole number (an int, or a float with no fraction) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a whole number, got {value!r}"
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return f"must be a whole number, got {value!r}"
    return number_problem(value, low, high)


def to_number(value: object) -> float:
    """A number cell or field as float: numbers as they are, numeric text parsed; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError(f"not a number: {value!r}")


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """A file's UTF-8 text (a leading BOM dropped); ValueError with the reason when it is missing, not a
    regular file, larger than `max_bytes`, unreadable or not UTF-8 (UTF-16 named as such)."""
    if not path.exists():
        raise ValueError("missing")
    if not path.is_file():
        raise ValueError("not a regular file (a folder, a device or a pipe)")
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise ValueError(f"larger than {max_bytes >> 20} MiB")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ValueError("is UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}, line {line}); "
                         "save it as UTF-8") from None
