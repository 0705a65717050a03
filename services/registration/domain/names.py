# Cyrillic letters in strings and comments here are the point, not look-alike typos.
# ruff: noqa: RUF001, RUF002, RUF003
"""Comparison keys for names written in any script, so one person compares equal to themself.

A name becomes a key in three steps:

1. **Romanise.** Cyrillic by the national system of the language it is written in:
   Ukrainian by the Cabinet of Ministers' 2010 system (KMU No. 55) and Russian by the
   passport system (ICAO Doc 9303, MVD/MID order of 2013-2016), both from the `translitua`
   library; Belarusian by the 2007 national system (table in this module, no library has it).
   The language comes from letters only one of them uses (ї є ґ → Ukrainian; ў, or і with
   ы/э/ё → Belarusian; і alone → Ukrainian; ы э ъ ё → Russian), helped by the member's
   nationality (UKR, BLR) where the letters leave it open, else Russian. The result is ASCII.
   Every other script, and Latin diacritics (ș ț ă ą ė ū ...), go through `anyascii`.
2. **Skeleton.** Lower-case ASCII letters, then spelling variants folded to one form:
   Romanian ci+a/o/u → c and hard c → k (Ciobanu/Chobanu, Cușnir/Kushnir); x→ks, w→v, q→k,
   ph→f; shch→sc, sh→s, ch→c, zh→z, ts/tz→c, kh→h, gh→g, h→g (Ukrainian and Belarusian Г is
   h, Russian g: Olha/Olga); yo/io/jo after a consonant → e (ё: Fyodor/Fedor,
   Kovalyova/Kovaleva); y and j → i (Natalya, Natal'ja, Natalia); doubled letters collapsed;
   ie → e (Yevhen/Evgen, Andriienko/Andrienko, Belarusian Kharkievich/Kharkevich); soft signs
   and apostrophes dropped.
3. **Phonetic code.** `jellyfish.metaphone` of the skeleton: the blocking key under which
   candidates are looked up in an index.

The keys are only ever compared with each other, so a fold only has to be consistent, not
linguistically exact; the birth date and the score guard against folds that merge too much.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import jellyfish
from anyascii import anyascii
from translitua import RussianICAO, UkrainianKMU, translit


class CyrillicLanguage(StrEnum):
    UKRAINIAN = "uk"
    RUSSIAN = "ru"
    BELARUSIAN = "be"


# Belarusian national system (Instruction on transliteration of Belarusian geographical
# names, 2000, revised 2007; adopted by UNGEGN in 2007). One deviation for comparison keys:
# х is written "kh" (as in Belarusian passports and BGN/PCGN) instead of the instruction's
# "ch", which every other system reads as ч.
_BELARUSIAN_LETTERS = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "ж": "ž", "з": "z",
    "і": "i", "й": "j", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ў": "ŭ", "ф": "f", "х": "kh", "ц": "c",
    "ч": "č", "ш": "š", "ы": "y", "э": "e", "ь": "", "'": "", "’": "", "ʼ": "",
}  # fmt: skip
# е ё ю я: je/jo/ju/ja at the start of a word and after a vowel, ь, ў or apostrophe;
# ie/io/iu/ia after a consonant.
_BELARUSIAN_IOTATED = {"е": "e", "ё": "o", "ю": "u", "я": "a"}
_BELARUSIAN_VOWELS = set("аеёіоуыэюяў") | {"ь", "'", "’", "ʼ"}

_CYRILLIC = re.compile("[\u0400-\u04ff]")
_NOT_LETTER = re.compile(r"[^a-z]+")
_CONSONANT_THEN_YO = re.compile(r"([bcdfgklmnprstvz])[yij]o")
_DOUBLE = re.compile(r"([a-z])\1+")
# Romanian spelling read as it sounds, so Moldovan names meet their Cyrillic spelling:
# ci before a/o/u is ч (Ciobanu, Чобану); c before a/o/u or a consonant is k (Cușnir, Кушнир).
_C_BEFORE_VOWEL = re.compile(r"ci([aou])")
_HARD_C = re.compile(r"c(?=[abdfgjklmnopqrtuvwy])")
_SKELETON_FOLDS = (
    ("x", "ks"),
    ("w", "v"),
    ("q", "k"),
    ("ph", "f"),
    ("shch", "sc"),
    ("sh", "s"),
    ("ch", "c"),
    ("zh", "z"),
    ("ts", "c"),
    ("tz", "c"),
    ("kh", "h"),
    ("gh", "g"),
    ("h", "g"),
)


def cyrillic_language(text: str, nationality: str | None = None) -> CyrillicLanguage:
    """Which national system to romanise with: the letters decide, then the nationality."""
    letters = set(text.lower())
    if "ў" in letters:
        return CyrillicLanguage.BELARUSIAN
    if letters & set("їєґ"):
        return CyrillicLanguage.UKRAINIAN
    if "і" in letters:
        belarusian = letters & set("ыэё") or nationality == "BLR"
        return CyrillicLanguage.BELARUSIAN if belarusian else CyrillicLanguage.UKRAINIAN
    if letters & set("ыэъё"):
        if nationality == "BLR" and not letters & set("ищъ"):
            return CyrillicLanguage.BELARUSIAN
        return CyrillicLanguage.RUSSIAN
    if nationality == "UKR":
        return CyrillicLanguage.UKRAINIAN
    if nationality == "BLR":
        return CyrillicLanguage.BELARUSIAN
    return CyrillicLanguage.RUSSIAN


def romanise_belarusian(text: str) -> str:
    """Belarusian Cyrillic to Latin by the 2007 national system (see the table above)."""
    result: list[str] = []
    previous = ""
    for char in text:
        lower = char.lower()
        if lower in _BELARUSIAN_IOTATED:
            after_consonant = previous.isalpha() and previous not in _BELARUSIAN_VOWELS
            latin = ("i" if after_consonant else "j") + _BELARUSIAN_IOTATED[lower]
        else:
            latin = _BELARUSIAN_LETTERS.get(lower, lower)
        result.append(latin.capitalize() if char != lower else latin)
        previous = lower
    return "".join(result)


def romanise(text: str, nationality: str | None = None) -> str:
    """Latin transcription of a name: national systems for Cyrillic, anyascii otherwise."""
    text = unicodedata.normalize("NFC", text)
    if _CYRILLIC.search(text):
        language = cyrillic_language(text, nationality)
        if language is CyrillicLanguage.UKRAINIAN:
            text = translit(text, UkrainianKMU)
        elif language is CyrillicLanguage.RUSSIAN:
            text = translit(text, RussianICAO)
        else:
            text = romanise_belarusian(text)
    return anyascii(text)


def skeleton(latin: str) -> str:
    """Lower-case ASCII words with spelling variants folded (see the module docstring)."""
    words = _NOT_LETTER.sub(" ", latin.lower().replace("'", "")).split()
    folded: list[str] = []
    for word in words:
        word = _C_BEFORE_VOWEL.sub(r"c\1", _HARD_C.sub("k", word))
        for old, new in _SKELETON_FOLDS:
            word = word.replace(old, new)
        word = _CONSONANT_THEN_YO.sub(r"\1e", word)
        word = _DOUBLE.sub(r"\1", word.replace("y", "i").replace("j", "i"))
        folded.append(word.replace("ie", "e") if word != "ie" else word)
    return " ".join(folded)


def comparison_key(text: str | None, nationality: str | None = None) -> str:
    """The comparison key of one name field ("" for none)."""
    if not text:
        return ""
    return skeleton(romanise(text, nationality))


def phonetic_code(key: str) -> str:
    """Metaphone of a comparison key, spaces removed ("" for an empty key)."""
    compact = key.replace(" ", "")
    return jellyfish.metaphone(compact) if compact else ""


@dataclass(frozen=True)
class NameKeys:
    """What is stored with a member for deduplication and search."""

    given_key: str
    family_key: str
    given_phonetic: str
    family_phonetic: str
    family_initial: str

    @property
    def full_key(self) -> str:
        return f"{self.given_key} {self.family_key}".strip()


def name_keys(given_name: str, family_name: str | None, nationality: str | None) -> NameKeys:
    """Keys of a member's names; the language is detected on both names together."""
    both = f"{given_name} {family_name or ''}"
    language_hint = nationality
    if _CYRILLIC.search(both):
        # Detect once for the whole name, so given and family name use the same system.
        language_hint = {
            CyrillicLanguage.UKRAINIAN: "UKR",
            CyrillicLanguage.BELARUSIAN: "BLR",
            CyrillicLanguage.RUSSIAN: "RUS",
        }[cyrillic_language(both, nationality)]
    given = comparison_key(given_name, language_hint)
    family = comparison_key(family_name, language_hint)
    return NameKeys(
        given_key=given,
        family_key=family,
        given_phonetic=phonetic_code(given),
        family_phonetic=phonetic_code(family),
        family_initial=family[:1],
    )


# Cyrillic letters that look like Latin ones, as typed in document numbers (КН 123456).
_DOCUMENT_HOMOGLYPHS = str.maketrans("АВЕКМНОРСТХУІ", "ABEKMHOPCTXYI")
_NOT_ALPHANUMERIC = re.compile(r"[^A-Z0-9]")


def document_number_key(number: str) -> str:
    """A document number for comparison: Cyrillic look-alikes as Latin, letters and digits."""
    upper = unicodedata.normalize("NFC", number).upper().translate(_DOCUMENT_HOMOGLYPHS)
    return _NOT_ALPHANUMERIC.sub("", anyascii(upper).upper())
