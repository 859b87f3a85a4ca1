"""Normalised views of a prediction for the injection detector (cheap, pure, never raises).

A hidden instruction survives many disguises; each view undoes some of them so that one set of
plain-ASCII patterns can see through all:
- `plain`: zero-width/bidi/control characters removed, NFKC (fullwidth and math letters become
  ASCII), homoglyphs folded (Cyrillic/Greek look-alikes to Latin), accents stripped, lower case,
  whitespace collapsed;
- `native`: the same without homoglyph folding (for patterns in non-Latin languages);
- `joined`: `plain` with line breaks and hyphenation removed (`ig-\\nnore` -> `ignore`);
- `unspaced`: runs of single letters squeezed (`i g n o r e  a l l` -> `ignoreall`);
- `leet`: `plain` with digits read as letters inside words that mix both (`1gn0r3` -> `ignore`);
- `decoded`: printable text hidden in base64 runs, normalised like `plain`.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

# Latin look-alikes from Cyrillic, Greek and other blocks (lower case after casefold)
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ɡ": "g", "ӏ": "l",
    "ԛ": "q", "ԝ": "w", "ո": "n", "α": "a", "ο": "o", "ρ": "p", "ε": "e", "ι": "i", "κ": "k", "ν": "v",
    "τ": "t", "υ": "u", "χ": "x", "ѵ": "v", "ɑ": "a", "ı": "i",
})
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_SPACED_LETTERS = re.compile(r"(?<![a-z0-9])(?:[a-z0-9][ .\-_*|]{1,3}){3,}[a-z0-9](?![a-z0-9])")
_SPACE = re.compile(r"[ \t\f\v]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_MIXED_WORD = re.compile(r"(?=[\w@$]*[a-z])(?=[\w@$]*[0-9@$])[\w@$]{3,}")


@dataclass(frozen=True)
class TextViews:
    plain: str
    native: str
    joined: str
    unspaced: str
    leet: str
    decoded: tuple[str, ...]

    def latin(self) -> tuple[str, ...]:
        """The distinct views for ASCII patterns (most captions have one)."""
        return tuple(dict.fromkeys((self.plain, self.joined, self.unspaced, self.leet, *self.decoded)))


_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _strip_invisible(text: str) -> str:
    if text.isascii():
        return _ASCII_CONTROL.sub("", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf", "Co", "Cs"})


def _fold(text: str, homoglyphs: bool) -> str:
    text = _strip_invisible(text)
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", text).casefold()
        if homoglyphs:
            text = text.translate(_HOMOGLYPHS)
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return "\n".join(_SPACE.sub(" ", line).strip() for line in text.splitlines())


def _unspace(text: str) -> str:
    return _SPACED_LETTERS.sub(lambda m: re.sub(r"[ .\-_*|]", "", m.group(0)) + " ", text)


def decode_base64_runs(text: str) -> list[str]:
    """Printable text (>= 8 chars, >= 30% letters, with a space) hidden in base64 runs of `text`."""
    found = []
    for match in _BASE64_RUN.finditer(text):
        run = match.group(0)
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4), altchars=b"-_" if "-" in run or "_" in run else None,
                                   validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        printable = sum(ch.isprintable() for ch in decoded)
        letters = sum(ch.isalpha() for ch in decoded)
        if len(decoded) >= 8 and printable == len(decoded) and letters >= 0.3 * len(decoded) and " " in decoded:
            found.append(decoded)
    return found


def text_views(text: str) -> TextViews:
    """All views of `text` (see the module docstring)."""
    plain = _fold(text, homoglyphs=True)
    native = plain if text.isascii() else _fold(text, homoglyphs=False)
    joined = re.sub(r"-?\n", "", plain)
    decoded = tuple(_fold(d, homoglyphs=True) for d in decode_base64_runs(_strip_invisible(text)))
    unspaced = _unspace(plain.replace("\n", " "))
    leet = _MIXED_WORD.sub(lambda m: m.group(0).translate(_LEET), plain)
    return TextViews(plain, native, joined, unspaced, leet, decoded)


def foreign_letters(text: str) -> int:
    """Letters outside the Latin and Greek scripts after NFKC and homoglyph folding (CJK, Cyrillic, ...)."""
    count = 0
    for ch in unicodedata.normalize("NFKC", _strip_invisible(text)).casefold().translate(_HOMOGLYPHS):
        if ch.isalpha() and not ch.isascii():
            name = unicodedata.name(ch, "")
            if not name.startswith(("LATIN", "GREEK")):
                count += 1
    return count
