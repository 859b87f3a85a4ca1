"""Normalised views of a prediction for the injection detector (cheap, pure, never raises).

A hidden instruction survives many disguises; each view undoes some of them so that one set of
plain-ASCII patterns can see through all:
- `plain`: zero-width/bidi/control characters removed, NFKC (fullwidth, math, circled and superscript
  letters become ASCII), look-alikes folded (Cyrillic, Greek, Armenian, Cherokee, Coptic, small
  capitals, IPA and hooked/stroked Latin letters, regional indicators, other scripts' digits, dashes
  and colons), accents stripped, lower case, whitespace collapsed;
- `native`: the same without homoglyph folding (for patterns in non-Latin languages);
- `joined`: `plain` with line breaks and hyphenation removed (`ig-\\nnore` -> `ignore`);
- `unspaced`: runs of single letters squeezed (`i g n o r e  a l l` -> `ignoreall`);
- `leet`: `plain` with digits read as letters inside words that mix both (`1gn0r3` -> `ignore`);
- `decoded`: text behind encodings (decoders.py: base64/base32, hex, percent and HTML escapes,
  character codes, Morse, ROT13, reversed and upside-down sentences), normalised like `plain`;
  `hidden` names those that reveal readable words no reader of the caption could see.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

from reward_fns.judge.decoders import decoded_views, english_vocabulary

# Latin look-alikes from other scripts (lower case after casefold). Letters named "LATIN LETTER SMALL
# CAPITAL X", "LATIN SMALL LETTER X WITH ...", "MODIFIER LETTER SMALL X" or "REGIONAL INDICATOR SYMBOL
# LETTER X" fold to x by name (see _fold_char); these have no such name.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "є": "e", "ѐ": "e", "ԏ": "t",
    "һ": "h", "ԍ": "g", "ү": "y", "ѵ": "v", "ѡ": "w", "ҽ": "e", "ԑ": "e", "ь": "b", "п": "n", "г": "r", "ɡ": "g",
    "ӧ": "o", "ӱ": "y", "ԃ": "d", "ԅ": "d",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ϲ": "c", "ω": "w", "ς": "c", "ϳ": "j", "ϱ": "p", "ϵ": "e", "ɛ": "e", "σ": "o", "ϑ": "o",
    # Armenian
    "օ": "o", "ս": "u", "հ": "h", "ց": "g", "ո": "n", "զ": "q", "ժ": "d", "ա": "w", "ռ": "n", "ք": "p",
    "ɑ": "a", "ı": "i", "ɩ": "i", "ɪ": "i", "ȷ": "j", "ɼ": "r", "ɾ": "r", "ʋ": "u", "ǀ": "l", "ɵ": "o", "ꞵ": "b",
    "ℯ": "e", "℮": "e", "ℊ": "g", "ⅼ": "l",
    # Coptic
    "ⲁ": "a", "ⲃ": "b", "ⲅ": "r", "ⲇ": "d", "ⲉ": "e", "ⲓ": "i", "ⲕ": "k", "ⲗ": "l", "ⲙ": "m", "ⲛ": "n", "ⲟ": "o",
    "ⲣ": "p", "ⲥ": "c", "ⲧ": "t", "ⲩ": "y", "ⲭ": "x", "ⲱ": "w",
    # punctuation that reads as ASCII
    "∶": ":", "꞉": ":", "ː": ":", "˸": ":", "ǃ": "!", "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-",
    "−": "-", "⁄": "/", "∕": "/", "‚": ",", "‹": "<", "›": ">",
}
# Cherokee capitals that look like Latin ones (casefold turns them into Cherokee small letters)
_CHEROKEE = {"Ꭺ": "a", "Ᏼ": "b", "Ꮯ": "c", "Ꭰ": "d", "Ꭼ": "e", "Ꮐ": "g", "Ꮋ": "h", "Ꮖ": "i", "Ꭻ": "j", "Ꮶ": "k",
             "Ꮮ": "l", "Ꮇ": "m", "Ꮲ": "p", "Ꭱ": "r", "Ꮪ": "s", "Ꭲ": "t", "Ꮩ": "v", "Ꮃ": "w", "Ꮓ": "z", "Ꮎ": "o",
             "Ꮍ": "y", "Ꮤ": "w", "Ꮟ": "b", "Ᏻ": "g"}
_CONFUSABLES.update({**_CHEROKEE, **{k.casefold(): v for k, v in _CHEROKEE.items()}})
# capitals whose small letter looks like another Latin letter (Greek Ν/ν, Η/η, Υ/υ), and letters NFKC would
# split ("⒜" -> "(a)"): folded before NFKC and casefold
_CAPITALS = str.maketrans({
    **{chr(0x249C + i): chr(97 + i) for i in range(26)},  # parenthesized small letters
    "⭕": "o", "⚪": "o", "○": "o", "◯": "o", "❌": "x", "✖": "x", "✕": "x", "❎": "x",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p",
    "Τ": "t", "Υ": "y", "Χ": "x", "Ϲ": "c", "Ϳ": "j", "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h",
    "О": "o", "Р": "p", "С": "c", "Т": "t", "Х": "x", "У": "y", "Ѕ": "s", "І": "i", "Ј": "j", "Ү": "y", "Ԁ": "d",
    "Ԛ": "q", "Ԝ": "w", "Ⲁ": "a", "Ⲃ": "b", "Ⲉ": "e", "Ⲓ": "i", "Ⲕ": "k", "Ⲙ": "m", "Ⲛ": "n", "Ⲟ": "o", "Ⲣ": "p",
    "Ⲥ": "c", "Ⲧ": "t", "Ⲩ": "y", "Ⲭ": "x",
    # Lisu letters, shaped like Latin capitals
    "ꓐ": "b", "ꓑ": "p", "ꓓ": "d", "ꓔ": "t", "ꓖ": "g", "ꓗ": "k", "ꓚ": "c", "ꓜ": "z", "ꓝ": "f", "ꓟ": "m", "ꓠ": "n",
    "ꓡ": "l", "ꓢ": "s", "ꓣ": "r", "ꓦ": "v", "ꓧ": "h", "ꓪ": "w", "ꓫ": "x", "ꓬ": "y", "ꓮ": "a", "ꓰ": "e", "ꓲ": "i",
    "ꓳ": "o", "ꓴ": "u", "ꓙ": "j",
})
_NAMED_LETTER = re.compile(r"^(?:LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?([A-Z])(?: WITH\w* .*)?|"
                           r"MODIFIER LETTER (?:SMALL |CAPITAL )?([A-Z])|LATIN SUBSCRIPT SMALL LETTER ([A-Z])|"
                           r"REGIONAL INDICATOR SYMBOL LETTER ([A-Z])|"
                           r"(?:CIRCLED|PARENTHESIZED|SQUARED|NEGATIVE CIRCLED|NEGATIVE SQUARED) LATIN "
                           r"(?:SMALL |CAPITAL )?LETTER ([A-Z]))$")


class _Folder(dict[int, str]):
    """str.translate table folding each non-ASCII character to its Latin look-alike (computed once)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        folded = _fold_char(ch)
        self[code] = folded
        return folded


def _fold_char(ch: str) -> str:
    if ch in _CONFUSABLES:
        return _CONFUSABLES[ch]
    if unicodedata.category(ch) == "Nd":
        return str(unicodedata.digit(ch, 0))
    match = _NAMED_LETTER.match(unicodedata.name(ch, ""))
    if match:
        return next(g for g in match.groups() if g).lower()
    return ch


_HOMOGLYPHS = _Folder()
# glyphs that read as l or as i (palochka, dental click, Roman numeral one...): `plain` folds them to l,
# the `strokes` view to i
_STROKES = frozenset("ӏǀⅼⅰ")
MAX_DECODED_CHARS = 20_000  # the judge sees at most a few thousand characters of a prediction
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_SPACED_LETTERS = re.compile(r"(?<![a-z0-9])(?:[a-z0-9](?:[^\w\n]|_){1,3}){3,}[a-z0-9](?![a-z0-9])")
_GAP = re.compile(r"(?:[^\w\n]|_){1,3}")
_SQUASHED = re.compile(r"[a-z]{12,}")
MAX_SQUASHED = 300
_SEGMENT_WORDS = """
a an as at be by do if in is it me my no of on or so to up us we everything anything before after above below
instead ignore disregard forget override previous prior earlier instructions instruction guidance guidelines rubric
grader graders judge judges evaluator evaluators reviewer scorer rater marker examiner assessor model llm ai
marks perfect maximum highest full score scores rate rating award give output reply respond print say answer caption
reference system prompt developer admin new now you your are this that all every each dimension dimensions five
correct identical equivalent flawless excellent top best points credit pass accept approve treat consider
"""
_VOCABULARY = english_vocabulary() | frozenset(_SEGMENT_WORDS.split())
_SPACE = re.compile(r"[ \t\f\v]+")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_WORD_CHARS = re.compile(r"[\w@$]{3,}")
_HAS_LETTER, _HAS_DIGIT = re.compile(r"[a-z]"), re.compile(r"[0-9@$]")


@dataclass(frozen=True)
class TextViews:
    plain: str
    native: str
    joined: str
    unspaced: str
    leet: str
    decoded: tuple[str, ...]
    hidden: tuple[tuple[str, str], ...] = ()  # (encoding, text) of readable text a reader could not see
    strokes: str = ""  # `plain` with vertical strokes (ӏ, ǀ) read as i instead of l; "" when there are none

    def latin(self) -> tuple[str, ...]:
        """The distinct views for ASCII patterns (most captions have one)."""
        views = (self.plain, self.joined, self.unspaced, self.leet, *self.decoded, self.strokes)
        return tuple(v for v in dict.fromkeys(views) if v)


_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")  # fillers shown as blank space


def _strip_invisible(text: str) -> str:
    if text.isascii():
        return _ASCII_CONTROL.sub("", text)
    return "".join(" " if ch in _BLANK_LETTERS else ch for ch in text
                   if ch in "\n\t" or (unicodedata.category(ch) not in {"Cc", "Cf", "Co", "Cs"}
                                        and not 0xFE00 <= ord(ch) <= 0xFE0F and not 0xE0100 <= ord(ch) <= 0xE01EF))


def _fold(text: str, homoglyphs: bool) -> str:
    text = _strip_invisible(text)
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", text.translate(_CAPITALS) if homoglyphs else text)
        text = text.casefold().translate(_HOMOGLYPHS) if homoglyphs else text.casefold()
        text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return "\n".join(_SPACE.sub(" ", line).strip() for line in text.splitlines())


def _unspace(text: str) -> str:
    """Squeeze runs of single letters; a gap unlike the usual one (with `_`, `/`, or a space where the usual
    gap has none, or two spaces) is a word break."""
    def squeeze(match: re.Match[str]) -> str:
        run = match.group(0)
        gaps = _GAP.findall(run)
        usual = max(set(gaps), key=gaps.count)

        def is_break(gap: str) -> bool:
            return "_" in gap or "/" in gap or "  " in gap or (" " in gap and " " not in usual and gap != usual)

        words = [""]
        for piece in re.split(r"((?:[^\w\n]|_){1,3})", run):
            if piece and (piece[0].isalnum()):
                words[-1] += piece
            elif piece and is_break(piece):
                words.append("")
        return " ".join(w for w in words if w) + " "
    return _SPACED_LETTERS.sub(squeeze, text)


def segment_words(run: str) -> str | None:
    """`run` (letters without spaces, e.g. `ignoreallpreviousinstructions`) split into known words when they
    cover at least 90% of it with two or more words of four letters or more; None otherwise (and for runs
    over MAX_SQUASHED letters: no sentence is written that way)."""
    n = len(run)
    if n > MAX_SQUASHED:
        return None
    covered = [0] * (n + 1)  # letters covered by known words in run[:end]
    back: list[int | None] = [None] * (n + 1)  # start of the word ending at `end`, None: letter skipped
    for end in range(1, n + 1):
        covered[end] = covered[end - 1]
        for start in range(max(0, end - 14), end):
            if run[start:end] in _VOCABULARY and covered[start] + end - start > covered[end]:
                covered[end], back[end] = covered[start] + end - start, start
    words, end = [], n
    while end > 0:
        start = back[end]
        if start is None:
            end -= 1
        else:
            words.append(run[start:end])
            end = start
    if covered[n] >= 0.9 * n and sum(len(w) >= 4 for w in words) >= 2:
        return " ".join(reversed(words))
    return None


def _desquash(text: str) -> str:
    return _SQUASHED.sub(lambda m: segment_words(m.group(0)) or m.group(0), text)


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
    found = decoded_views(_strip_invisible(text)) if len(text) <= MAX_DECODED_CHARS else []
    decoded = tuple(dict.fromkeys(_fold(d, homoglyphs=True) for _, d, _ in found))
    hidden = tuple((name, _fold(d, homoglyphs=True)) for name, d, secret in found if secret)
    unspaced = _desquash(_unspace(plain.replace("\n", " ")))
    strokes = (_fold("".join("i" if ch in _STROKES else ch for ch in text), homoglyphs=True)
               if any(ch in _STROKES for ch in text) else "")
    joined = _desquash(joined)
    leet = _WORD_CHARS.sub(lambda m: m.group(0).translate(_LEET) if _HAS_LETTER.search(m.group(0)) and
                           _HAS_DIGIT.search(m.group(0)) else m.group(0), plain)
    return TextViews(plain, native, joined, unspaced, leet, decoded, hidden, strokes)


def foreign_letters(text: str) -> int:
    """Letters outside the Latin and Greek scripts after NFKC and homoglyph folding (CJK, Cyrillic, ...)."""
    count = 0
    for ch in unicodedata.normalize("NFKC", _strip_invisible(text).translate(_CAPITALS)).casefold().translate(
            _HOMOGLYPHS):
        if ch.isalpha() and not ch.isascii():
            name = unicodedata.name(ch, "")
            if not name.startswith(("LATIN", "GREEK")):
                count += 1
    return count
