"""Recover text hidden in an encoding inside a prediction, for the injection detector (pure, never raises).

A caption of a medical video has no use for base64, hex, percent or HTML escapes, character codes
or ciphers; text found behind one of them is hidden from a human reader but not from the judge.
Each decoder finds its kind of run and returns the printable text behind it:
- base64 (standard and URL-safe, also split into chunks by spaces or line breaks) and base32;
- hex (plain, spaced pairs, `\\x41`, `0x41`), percent escapes (`%41`), HTML entities
  (`&#65;`, `&#x41;`), backslash escapes (`\\u0041`, `\\U...`, `\\101`);
- base85 / Ascii85, quoted-printable (`=41`), code points (`U+0041`), base64 written backwards;
- character codes as decimal, octal or 8-bit binary numbers; Morse code; the phonetic alphabet;
- character codes as decimal, octal, binary or letter positions (a=1 ... z=26);
- transforms of each sentence that read as English only when something was hidden there: Caesar
  shifts (ROT13 and the other 24), ROT47, Atbash, reversed text, reversed words and upside-down text.
`decoded_views` runs them all; `english_words` measures how much of a text reads as English.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
from collections.abc import Callable, Iterator

MIN_CHARS = 6
_COMMON_WORDS = """
the and for are you your this that with all any each every from not but can was were will have has had been
its our out now new one two three four five give gave rate rated rating score scores scored scoring grade grades
graded grading mark marks marked full top best highest maximum max perfect correct answer answers caption captions
text reply respond response output print say says said ignore ignored disregard forget previous prior above
instruction instructions rule rules rubric reference judge grader evaluator reviewer model system prompt assign
award credit points point please should must treat same match matches identical equal equals override ground
truth true real only just than then them they these those what which when where who whoever here there about
into over under again also very more most less least some such other another dimension dimensions criteria
criterion evaluation evaluate assistant user admin developer task role note message keep make take let per
follow following flawless excellent done good wrong right better accept accepted approve
stop start return returns compare comparing compared comparison expected expect category categories every
graded grades marking mark value values top mark verdict decide decided consider considered count counted
look like know think want need use used using work way because while since still even ever never always
tell told ask asked show shown see seen read write written just also much many well high higher low lower
number numbers full fully completely entirely totally exactly simply really certainly definitely surely
""".replace("top mark", "")
_COMMON = frozenset(_COMMON_WORDS.split())
_WORDS = re.compile(r"[a-z]+")

_BASE64_CHUNKED = re.compile(r"(?:[A-Za-z0-9+/_-]{4,}={0,2}(?:[ \t]|\r?\n)?){3,}")
_BASE32 = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z2-7]{16,}|[a-z2-7]{16,})={0,6}(?![A-Za-z0-9])")
_HEX_PLAIN = re.compile(r"(?:(?<![0-9A-Za-z])|(?<=0x)|(?<=0X))(?:[0-9A-Fa-f]{2}){6,}(?![0-9A-Za-z])")
_HEX_SPACED = re.compile(r"(?<![0-9A-Za-z])(?:(?:[0-9A-Fa-f]{2}){1,4}[ ,:;\-]){3,}(?:[0-9A-Fa-f]{2}){1,4}"
                         r"(?![0-9A-Za-z])")
_HEX_PREFIXED = re.compile(r"(?:(?:\\x|0x|0X|\\X)[0-9A-Fa-f]{2}[ ,;]*){4,}")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_QUOTED_PRINTABLE = re.compile(r"=[0-9A-F]{2}")
_BASE85 = re.compile(r"(?<!\S)(?:[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{20,}|[!-u]{20,})(?!\S)|<~[!-uz\s]{10,}~>")
_ENTITY_CODE = r"&#(?:[0-9]{1,7}|[xX][0-9A-Fa-f]{1,6});"
_ESCAPE_CODE = r"\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|[0-7]{3})|U\+[0-9A-Fa-f]{4,6}|%u[0-9A-Fa-f]{4}"
_ENTITY = re.compile(_ENTITY_CODE)
_BACKSLASH = re.compile(_ESCAPE_CODE)
_NUMBERS = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}(?:[ ,;]+|\s*/\s*|[\-_:|.])){5,}[0-9]{1,3}(?![0-9])")
_BINARY = re.compile(r"(?<![01])(?:[01]{8}[ ,;]*){4,}|(?<![0-9])(?:[01]{6,8}[ ,;]+){4,}[01]{6,8}(?![0-9])")
_MORSE = re.compile(r"(?<![.\-\w])(?:[.\-]{1,6}(?: {1,3}| ?/ ?)){5,}[.\-]{1,6}(?![.\-\w])")
_NATO_WORDS = ("alfa alpha bravo charlie delta echo foxtrot golf hotel india juliett juliet kilo lima mike november "
               "oscar papa quebec romeo sierra tango uniform victor whiskey whisky xray yankee zulu")
_NATO = {word: word[0] for word in _NATO_WORDS.split()}
_MORSE_CODE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h", "..": "i",
    ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p", "--.-": "q", ".-.": "r",
    "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z",
    "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6",
    "--...": "7", "---..": "8", "----.": "9", "---...": ":", "-...-": "=",
}
# upside-down letters read right side up (the text is also reversed)
_FLIP = str.maketrans({"ɐ": "a", "q": "b", "ɔ": "c", "p": "d", "ǝ": "e", "ɟ": "f", "ƃ": "g", "ɥ": "h", "ı": "i",
                       "ɾ": "j", "ʞ": "k", "ɯ": "m", "u": "n", "d": "p", "b": "q", "ɹ": "r", "ʇ": "t", "n": "u",
                       "ʌ": "v", "ʍ": "w", "ʎ": "y", "˙": ".", "¿": "?", "¡": "!", "„": ",", "'": ","})
_TURNED = frozenset("ɐɔǝɟƃɥɯɹʇʌʍʎʞ")
_MAX_RUNS = 32  # runs decoded per kind: bounded work per prediction


def english_vocabulary() -> frozenset[str]:
    """The common English and grading words `english_words` counts."""
    return _COMMON


def english_words(text: str) -> int:
    """How many words of `text` (lower-cased) are common English or grading words."""
    return sum(word in _COMMON for word in _WORDS.findall(text.lower()))


def is_text(decoded: str) -> bool:
    """Printable text of at least MIN_CHARS with a letter in it (not binary noise)."""
    return (len(decoded) >= MIN_CHARS and all(ch.isprintable() or ch in "\n\t" for ch in decoded)
            and any(ch.isalpha() for ch in decoded))


def readable(decoded: str) -> bool:
    """Text a reader would take for words: mostly letters, with spaces or a common English word."""
    letters = sum(ch.isalpha() for ch in decoded)
    return (is_text(decoded) and letters >= 0.3 * len(decoded.replace(" ", ""))
            and (" " in decoded.strip() or english_words(decoded) >= 1))


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _runs(pattern: re.Pattern[str], text: str) -> Iterator[str]:
    for count, match in enumerate(pattern.finditer(text)):
        if count == _MAX_RUNS:
            return
        yield match.group(0)


def _base64(text: str) -> Iterator[str]:
    for run in _runs(_BASE64_CHUNKED, text):
        chunks = run.split()
        found = False
        for start in range(min(len(chunks), 8)):  # words before the payload may run into it
            squeezed = "".join(chunks[start:])
            if len(squeezed) < 16 or found:
                break
            for candidate in (squeezed, squeezed[::-1]):  # also written backwards
                candidate = candidate.strip("=")
                altchars = b"-_" if "-" in candidate or "_" in candidate else None
                try:
                    raw = base64.b64decode(candidate + "=" * (-len(candidate) % 4), altchars=altchars, validate=True)
                except (binascii.Error, ValueError):
                    continue
                decoded = _utf8(raw)
                if decoded is not None and is_text(decoded):
                    yield decoded
                    found = True
                    break


def _base32(text: str) -> Iterator[str]:
    for run in _runs(_BASE32, text):
        try:
            decoded = _utf8(base64.b32decode(run + "=" * (-len(run.rstrip("=")) % 8 if "=" not in run else 0),
                                             casefold=True))
        except (binascii.Error, ValueError):
            continue
        if decoded is not None:
            yield decoded


def _hex(text: str) -> Iterator[str]:
    for pattern in (_HEX_PLAIN, _HEX_SPACED, _HEX_PREFIXED):
        for run in _runs(pattern, text):
            digits = re.sub(r"\\x|0x|0X|\\X|[ ,:;\-]", "", run)
            if len(digits) % 2:
                continue
            try:
                decoded = _utf8(bytes.fromhex(digits))
            except ValueError:
                continue
            if decoded is not None:
                yield decoded


def _percent(text: str) -> Iterator[str]:
    if len(_PERCENT.findall(text)) >= 3:
        raw = _PERCENT.sub(lambda m: chr(int(m.group(0)[1:], 16)) if int(m.group(0)[1:], 16) < 128 else m.group(0),
                           text)
        yield raw


def _quoted_printable(text: str) -> Iterator[str]:
    if len(_QUOTED_PRINTABLE.findall(text)) >= 3:
        yield _QUOTED_PRINTABLE.sub(lambda m: chr(int(m.group(0)[1:], 16)) if int(m.group(0)[1:], 16) < 128
                                    else m.group(0), text)


def _base85(text: str) -> Iterator[str]:
    for run in _runs(_BASE85, text):
        for decode in (base64.b85decode, base64.a85decode):
            try:
                decoded = _utf8(decode(run.encode("ascii"), adobe=True) if decode is base64.a85decode and
                                run.startswith("<~") else decode(run.encode("ascii")))
            except (ValueError, TypeError):
                continue
            if decoded is not None:
                yield decoded


def _nato(text: str) -> Iterator[str]:
    words = re.findall(r"[a-z]+|/", text.lower())
    letters = [_NATO.get(w, " " if w == "/" else None) for w in words]
    run: list[str] = []
    for letter in [*letters, None]:
        if letter is None:
            if sum(ch != " " for ch in run) >= 8:
                yield "".join(run)
            run = []
        else:
            run.append(letter)


def _entities(text: str) -> Iterator[str]:
    if len(_ENTITY.findall(text)) >= 3:
        yield _unescape(_ENTITY, text, html.unescape)


def _unescape(pattern: re.Pattern[str], text: str, decode: Callable[[str], str]) -> str:
    """`text` with every escape decoded; when escapes are written apart ("U+0069 U+0067"), the single
    separators between them are not text and go too."""
    spaced = re.compile(rf"(?:{pattern.pattern})[ ,;](?={pattern.pattern})")
    adjacent = re.compile(rf"(?:{pattern.pattern})(?={pattern.pattern})")
    if len(spaced.findall(text)) > len(adjacent.findall(text)):
        text = spaced.sub(lambda m: m.group(0)[:-1], text)
    return pattern.sub(lambda m: decode(m.group(0)), text)


def _backslash(text: str) -> Iterator[str]:
    if len(_BACKSLASH.findall(text)) >= 3:
        def one(escape: str) -> str:
            body = escape[1:]  # \101, \uXXXX, \xXX, U+XXXX, %uXXXX
            code = int(body, 8) if body[0] in "01234567" else int(body[1:], 16)
            return chr(code) if code < 0x110000 and not 0xD800 <= code <= 0xDFFF else ""
        yield _unescape(_BACKSLASH, text, one)


def _codes(text: str) -> Iterator[str]:
    for run in _runs(_NUMBERS, text):
        numbers = re.findall(r"[0-9]+|/", run)
        if all(n == "/" or 1 <= int(n) <= 26 for n in numbers):  # letter positions (a=1 ... z=26), "/" between words
            yield "".join(" " if n == "/" else chr(96 + int(n)) for n in numbers)
        numbers = [n for n in numbers if n != "/"]
        for base in (10, 8):
            try:
                codes = [int(n, base) for n in numbers]
            except ValueError:
                continue
            if all(32 <= c < 127 or c in (9, 10) for c in codes):
                yield "".join(map(chr, codes))
    for run in _runs(_BINARY, text):
        groups = run.split() if re.search(r"[01]{6,8}[ ,;]+[01]", run) and not re.search(r"[01]{9}", run) else \
            re.findall(r"[01]{8}", run)
        yield "".join(chr(int(bits.strip(",;"), 2)) for bits in groups if bits.strip(",;"))


def _morse(text: str) -> Iterator[str]:
    for run in _runs(_MORSE, text):
        words = re.split(r" ?/ ?| {2,}", run.strip())
        letters = [" ".join("".join(_MORSE_CODE.get(code, "?") for code in word.split()) for word in words)]
        yield letters[0]


_SHIFTS = [str.maketrans({**{chr(97 + i): chr(97 + (i + k) % 26) for i in range(26)},
                           **{chr(65 + i): chr(65 + (i + k) % 26) for i in range(26)}}) for k in range(26)]


def _caesar(text: str) -> Iterator[str]:
    yield codecs.encode(text, "rot13")  # ROT13 first: the common one
    for k in range(1, 26):
        if k != 13:
            yield text.translate(_SHIFTS[k])


_ROT47 = str.maketrans({chr(c): chr(33 + (c - 33 + 47) % 94) for c in range(33, 127)})
_ATBASH = str.maketrans({**{chr(97 + i): chr(122 - i) for i in range(26)},
                         **{chr(65 + i): chr(90 - i) for i in range(26)}})


def _rot47(text: str) -> Iterator[str]:
    yield text.translate(_ROT47)


def _atbash(text: str) -> Iterator[str]:
    yield text.translate(_ATBASH)


def _words_reversed(text: str) -> Iterator[str]:
    yield re.sub(r"[^\s]+", lambda m: m.group(0)[::-1], text)


def _reversed(text: str) -> Iterator[str]:
    yield text[::-1]


def _upside_down(text: str) -> Iterator[str]:
    if sum(ch in _TURNED for ch in text) >= 3:
        yield text.translate(_FLIP)[::-1]


# name -> (decoder, kind): "piece" decoders return what one run hides; "substitution" decoders return the
# whole text with their escapes replaced; "transform" decoders re-read the whole text
DECODERS: dict[str, tuple[Callable[[str], Iterator[str]], str]] = {
    "base64": (_base64, "piece"), "base32": (_base32, "piece"), "base85": (_base85, "piece"), "hex": (_hex, "piece"),
    "character codes": (_codes, "piece"), "morse": (_morse, "piece"), "phonetic alphabet": (_nato, "piece"),
    "percent escapes": (_percent, "substitution"), "quoted-printable": (_quoted_printable, "substitution"),
    "html entities": (_entities, "substitution"), "backslash escapes": (_backslash, "substitution"),
    "caesar/rot13": (_caesar, "transform"), "rot47": (_rot47, "transform"), "atbash": (_atbash, "transform"),
    "reversed": (_reversed, "transform"),
    "reversed words": (_words_reversed, "transform"), "upside-down": (_upside_down, "transform"),
}
_SEGMENT = re.compile(r"[^.!?\n]+")
_MIRRORED = frozenset({"reversed", "upside-down"})


def _transformed_segments(text: str, transform: Callable[[str], Iterator[str]], mirrored: bool) -> str | None:
    """The sentences of the transformed text that read as English (>= 3 common words, twice as many as the
    same characters of `text`, mirrored for reversing transforms), joined; None when there are none. The
    transforms keep lengths, so a sentence of the result maps to the characters it came from."""
    found: list[str] = []
    n = len(text)
    for after_text in transform(text):
        for match in _SEGMENT.finditer(after_text):
            after = english_words(match.group(0))
            if after < 3:
                continue
            start, end = (n - match.end(), n - match.start()) if mirrored else (match.start(), match.end())
            if after > 2 * english_words(text[start:end]):
                found.append(match.group(0).strip())
        if found:
            break
    return ". ".join(found) or None


def decoded_views(text: str) -> list[tuple[str, str, bool]]:
    """(encoding name, decoded text, hidden) for every decoding of `text` that gives text; `hidden` when
    the decoding reveals words a reader of `text` could not see."""
    found: list[tuple[str, str, bool]] = []
    for name, (decoder, kind) in DECODERS.items():
        try:
            if kind == "transform":
                revealed = _transformed_segments(text, decoder, name in _MIRRORED)
                if revealed is not None:
                    found.append((name, revealed, True))
                continue
            for decoded in decoder(text):
                if kind == "substitution":
                    if decoded != text:
                        found.append((name, decoded, english_words(decoded) >= english_words(text) + 2))
                elif is_text(decoded):
                    found.append((name, decoded, readable(decoded)))
        except (ValueError, OverflowError, RecursionError):  # a malformed run is not hidden text
            continue
    return found
