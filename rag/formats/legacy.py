"""Vietnamese text in the encodings offices used before Unicode: Windows-1258, TCVN3 (ABC), VNI.

TCVN3 and VNI are font encodings: a file typed in a ``.VnTime`` or ``VNI-Times`` font stores
Latin-1 bytes that only that font draws as Vietnamese, so read as Latin-1 it shows "Hµ Néi" or
"Haø Noäi" for "Hà Nội". Detection compares how many words are well-formed Vietnamese syllables
before and after conversion, line by line, so real Unicode Vietnamese is never changed.

TCVN3 has no capitals with tone marks: all-caps text uses a ``.VnTimeH`` font that draws the
lower-case codes as capitals. Such runs are upper-cased when the font is known (``.docx``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# ------------------------------------------------------------------ tables

# Unicode → TCVN3 (ABC, "VN3"), as Latin-1 characters: the 134 lower-case letters and 7 capitals.
_TCVN3_ROWS = {
    "aàáảãạ": "a\xb5\xb8\xb6\xb7\xb9",
    "ăằắẳẵặ": "\xa8\xbb\xbe\xbc\xbd\xc6",
    "âầấẩẫậ": "\xa9\xc7\xca\xc8\xc9\xcb",
    "eèéẻẽẹ": "e\xcc\xd0\xce\xcf\xd1",
    "êềếểễệ": "\xaa\xd2\xd5\xd3\xd4\xd6",
    "iìíỉĩị": "i\xd7\xdd\xd8\xdc\xde",
    "oòóỏõọ": "o\xdf\xe3\xe1\xe2\xe4",
    "ôồốổỗộ": "\xab\xe5\xe8\xe6\xe7\xe9",
    "ơờớởỡợ": "\xac\xea\xed\xeb\xec\xee",
    "uùúủũụ": "u\xef\xf3\xf1\xf2\xf4",
    "ưừứửữự": "\xad\xf5\xf8\xf6\xf7\xf9",
    "yỳýỷỹỵ": "y\xfa\xfd\xfb\xfc\xfe",
    "đĂÂĐÊÔƠƯ": "\xae\xa1\xa2\xa7\xa3\xa4\xa5\xa6",
}
TO_TCVN3: dict[str, str] = {u: t for us, ts in _TCVN3_ROWS.items() for u, t in zip(us, ts) if u != t}
FROM_TCVN3: dict[str, str] = {t: u for u, t in TO_TCVN3.items()}

# Unicode → VNI Windows: a base letter followed by a mark character, or one character.
_VNI_TONES = {"": "", "\u0300": "ø", "\u0301": "ù", "\u0309": "û", "\u0303": "õ", "\u0323": "ï"}
_VNI_HAT = {"": "â", "\u0300": "à", "\u0301": "á", "\u0309": "å", "\u0303": "ã", "\u0323": "ä"}
_VNI_BREVE = {"": "ê", "\u0300": "è", "\u0301": "é", "\u0309": "ú", "\u0303": "ü", "\u0323": "ë"}
_VNI_SINGLE = {"đ": "ñ", "ơ": "ô", "ư": "ö", "ì": "ì", "í": "í", "ỉ": "æ", "ĩ": "ó", "ị": "ò", "ỵ": "î"}
_TONE_MARKS = "\u0300\u0301\u0309\u0303\u0323"


def _build_vni() -> dict[str, str]:
    out: dict[str, str] = {}
    for tone in _VNI_TONES:
        for base in "aeouy":
            out[unicodedata.normalize("NFC", base + tone)] = base + _VNI_TONES[tone]
        for base, marks in (("â", _VNI_HAT), ("ê", _VNI_HAT), ("ô", _VNI_HAT), ("ă", _VNI_BREVE)):
            plain = {"â": "a", "ê": "e", "ô": "o", "ă": "a"}[base]
            out[unicodedata.normalize("NFC", base + tone)] = plain + marks[tone]
        for base, code in (("ơ", "ô"), ("ư", "ö")):
            out[unicodedata.normalize("NFC", base + tone)] = code + _VNI_TONES[tone]
        out[unicodedata.normalize("NFC", "i" + tone)] = "i" + _VNI_TONES[tone]
    out.update(_VNI_SINGLE)
    for u in list(out):  # capitals: the capital base and the capital of each mark character
        out[u.upper()] = out[u].upper()
    return {u: v for u, v in out.items() if u != v}


TO_VNI: dict[str, str] = _build_vni()
FROM_VNI: dict[str, str] = {v: u for u, v in TO_VNI.items()}
for _u, _v in list(TO_VNI.items()):  # a capital base with a lower-case mark ("Aø") also occurs
    if len(_v) == 2 and _v[0].isupper():
        FROM_VNI.setdefault(_v[0] + _v[1].lower(), _u)
_VNI_RE = re.compile("|".join(sorted(map(re.escape, FROM_VNI), key=len, reverse=True)))


def to_tcvn3(text: str) -> str:
    """Unicode → TCVN3 characters; capitals with a tone mark become their lower-case code."""
    text = unicodedata.normalize("NFC", text)
    return "".join(TO_TCVN3.get(c) or TO_TCVN3.get(c.lower()) or ("\xfd" if c == "Ý" else c) for c in text)


def from_tcvn3(text: str, capitals: bool = False) -> str:
    """TCVN3 characters → Unicode (``capitals`` for a ``.VnTimeH``-style all-caps font)."""
    out = "".join(FROM_TCVN3.get(c, c) for c in text)
    return out.upper() if capitals else out


def to_vni(text: str) -> str:
    """Unicode → VNI Windows characters."""
    text = unicodedata.normalize("NFC", text)
    return "".join(TO_VNI.get(c, c) for c in text)


def from_vni(text: str) -> str:
    """VNI Windows characters → Unicode."""
    return _VNI_RE.sub(lambda m: FROM_VNI[m.group()], text)


# ------------------------------------------------------------------ detection

_ONSET = "ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|b|c|d|đ|g|h|k|l|m|n|p|r|s|t|v|x"
_NUCLEI_TEXT = (
    "a ă â e ê i o ô ơ u ư y ai ao au ay âu ây eo êu ia iê iu oa oă oe oi ôi ơi oo ua uâ uê ui uô uơ "
    "ươ ưa ưi ưu uy yê iêu oai oao oay oeo uây uôi ươi ươu uya uyê uyu yêu"
)
_NUCLEI = _NUCLEI_TEXT.split()
_SYLLABLE = re.compile(
    rf"(?:{_ONSET})?(?:{'|'.join(sorted(_NUCLEI, key=len, reverse=True))})(?:ch|ng|nh|c|m|n|p|t)?"
)
_TOKEN = re.compile(r"[^\s!-/:-@\[-`{-~\u2010-\u201f]+")
# Letters only Vietnamese Unicode has (beyond Latin-1): ă đ ĩ ũ ơ ư and ạ … ỹ.
_VI_UNICODE = re.compile(
    "[\u0102\u0103\u0110\u0111\u0128\u0129\u0168\u0169\u01a0\u01a1\u01af\u01b0\u1ea0-\u1ef9]"
)
_HIGH = re.compile("[\x80-\xff]")


@lru_cache(maxsize=65536)
def is_syllable(word: str) -> bool:
    """Whether ``word`` is a well-formed Vietnamese syllable (at most one tone mark)."""
    d = unicodedata.normalize("NFD", word.lower())
    if sum(c in _TONE_MARKS for c in d) > 1:
        return False
    base = unicodedata.normalize("NFC", "".join(c for c in d if c not in _TONE_MARKS))
    return _SYLLABLE.fullmatch(base) is not None


def vietnamese_score(text: str) -> tuple[int, int]:
    """(well-formed syllables, words) over the words of ``text`` that have a non-ASCII character."""
    words = [w for w in _TOKEN.findall(unicodedata.normalize("NFC", text)) if not w.isascii()]
    return sum(is_syllable(w) for w in words), len(words)


def _better(original: str, converted: str) -> bool:
    ok0, n0 = vietnamese_score(original)
    ok1, n1 = vietnamese_score(converted)
    if n1 == 0 or ok1 < 0.75 * n1:
        return False
    return n0 == 0 or ok0 <= 0.5 * n0 and ok1 > ok0


def detect_legacy(text: str) -> str:
    """``"tcvn3"``, ``"vni"`` or ``""`` for a piece of text (a line, a run)."""
    if not _HIGH.search(text) or _VI_UNICODE.search(text):
        return ""
    best, best_ok = "", -1
    for name, convert in (("tcvn3", from_tcvn3), ("vni", from_vni)):
        converted = convert(text)
        if _better(text, converted):
            ok = vietnamese_score(converted)[0]
            if ok > best_ok:
                best, best_ok = name, ok
    return best


def convert(text: str, encoding: str, capitals: bool = False) -> str:
    if encoding == "tcvn3":
        return from_tcvn3(text, capitals)
    if encoding == "vni":
        return from_vni(text)
    return text


def fix_legacy(text: str) -> tuple[str, str]:
    """Convert the lines of ``text`` written in TCVN3 or VNI; other lines stay as they are.

    Returns the text and the encodings found ("" when nothing was converted).
    """
    found: set[str] = set()
    lines = text.split("\n")
    for i, line in enumerate(lines):
        enc = detect_legacy(line)
        if enc:
            lines[i] = convert(line, enc)
            found.add(enc)
    return "\n".join(lines), "+".join(sorted(found))


def font_encoding(font: str | None) -> tuple[str, bool]:
    """The legacy encoding a font name implies (``.VnTime`` → tcvn3, ``VNI-Times`` → vni) and
    whether it is an all-caps TCVN3 font (``.VnTimeH``)."""
    f = (font or "").strip().lower()
    if f.startswith(".vn"):
        return "tcvn3", f.endswith("h")
    if f.startswith("vni"):
        return "vni", False
    return "", False


def convert_run(text: str, font: str | None) -> tuple[str, str]:
    """A run of a Word document in ``font``: converted when its font is a TCVN3/VNI font and the
    conversion reads better, or (without such a font) when the text itself is detected."""
    enc, caps = font_encoding(font)
    if enc and _HIGH.search(text) and not _VI_UNICODE.search(text):
        converted = convert(text, enc, caps)
        if _better(text, converted):
            return converted, enc
        if caps and vietnamese_score(converted)[0] >= vietnamese_score(text)[0] and converted != text:
            return converted, enc
    return text, ""


# ------------------------------------------------------------------ bytes


def _utf16_without_bom(raw: bytes) -> str:
    if len(raw) < 4 or len(raw) % 2:
        return ""
    odd = raw[1::2].count(0) / (len(raw) / 2)
    even = raw[0::2].count(0) / (len(raw) / 2)
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return ""


def decode_bytes(raw: bytes) -> tuple[str, str]:
    """Text of a plain-text file and the encoding it was read as.

    UTF-8 (with or without BOM) and UTF-16 (BOM, or detected from its zero bytes) first; otherwise
    Windows-1258 (tone marks composed to NFC), TCVN3 or VNI, whichever reads as Vietnamese.
    TCVN3/VNI lines inside a UTF-8 file are converted too. Raises ValueError when nothing fits.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return _fixed(raw[3:].decode("utf-8", errors="strict"), "utf-8")
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):
            text = raw[2:].decode(codec, errors="replace")
            if not _plausible(text):
                raise ValueError("not UTF-8 text, and broken as UTF-16; save the file as UTF-8")
            return _fixed(text, "utf-16")
    codec = _utf16_without_bom(raw)
    if codec:
        text = raw.decode(codec, errors="replace")
        if _plausible(text):
            return _fixed(text, "utf-16")
    try:
        return _fixed(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    if b"\x00" in raw:
        raise ValueError(f"binary data, not text (byte {raw.index(0)}); save the file as UTF-8 text")
    candidates = []
    cp1258 = unicodedata.normalize("NFC", raw.decode("cp1258", errors="replace"))
    candidates.append((vietnamese_score(cp1258), "windows-1258", cp1258))
    latin1 = raw.decode("latin-1")
    candidates.append((vietnamese_score(from_tcvn3(latin1)), "tcvn3", from_tcvn3(latin1)))
    cp1252 = raw.decode("cp1252", errors="replace")
    candidates.append((vietnamese_score(from_vni(cp1252)), "vni", from_vni(cp1252)))
    (ok, n), name, text = max(candidates, key=lambda c: c[0][0] - (c[0][1] - c[0][0]))
    if n and ok >= 0.75 * n:
        return text, name
    raise ValueError(
        f"not UTF-8 text (byte {bad}), nor UTF-16, Windows-1258, TCVN3 or VNI; save the file as UTF-8"
    )


_LATIN = re.compile("[\t\n\r\x0c\x20-\x7e\xa0-\u024f\u0300-\u036f\u1e00-\u1eff\u2000-\u206f\u20ab]")


def _plausible(text: str) -> bool:
    """Decoded UTF-16 that is text in a Latin script (not a misread binary or another file)."""
    return bool(text) and "\ufffd" not in text and len(_LATIN.findall(text)) >= 0.9 * len(text)


def _fixed(text: str, encoding: str) -> tuple[str, str]:
    text, found = fix_legacy(text)
    return text, f"{encoding}+{found}" if found else encoding
