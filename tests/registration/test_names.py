"""Comparison keys: national romanisation, diacritics and spelling variants fold to one key."""
# ruff: noqa: RUF001, RUF003

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.registration.domain.names import (
    CyrillicLanguage,
    comparison_key,
    cyrillic_language,
    document_number_key,
    name_keys,
    romanise,
)


@pytest.mark.parametrize(
    ("text", "nationality", "expected"),
    [
        # Ukrainian, KMU 2010: г→h, и→y, word-initial є/ю/я → ye/yu/ya, зг → zgh
        ("Олександр Шевченко", "UKR", "Oleksandr Shevchenko"),
        ("Дмитро Згурський", "UKR", "Dmytro Zghurskyi"),
        ("Юлія Єрмоленко", None, "Yuliia Yermolenko"),
        # Russian, passport system (ICAO Doc 9303): ё→e, ья→ia, й→i
        ("Наталья Ковалёва", None, "Natalia Kovaleva"),
        ("Александру Русу", "MDA", "Aleksandru Rusu"),
        # Belarusian national system (2007; х as kh), diacritics then folded
        ("Аляксандр Лукашэнка", "BLR", "Aliaksandr Lukasenka"),
        ("Вольга Харкевіч", "BLR", "Volha Kharkievic"),
        ("Ўладзімір Шчасны", None, "Uladzimir Scasny"),
        # Latin diacritics fold
        ("Ștefan Cușnir", "MDA", "Stefan Cusnir"),
    ],
)
def test_cyrillic_is_romanised_by_the_national_system(
    text: str, nationality: str | None, expected: str
) -> None:
    assert romanise(text, nationality) == expected


@pytest.mark.parametrize(
    ("text", "nationality", "language"),
    [
        ("Їжакевич", None, CyrillicLanguage.UKRAINIAN),
        ("Іван", None, CyrillicLanguage.UKRAINIAN),
        ("Ўладзімір", None, CyrillicLanguage.BELARUSIAN),
        ("Міхаіл Лукашэнка", None, CyrillicLanguage.BELARUSIAN),
        ("Вольга Харкевіч", "BLR", CyrillicLanguage.BELARUSIAN),
        ("Аляксандр Лукашэнка", None, CyrillicLanguage.RUSSIAN),  # could be either
        ("Пётр", None, CyrillicLanguage.RUSSIAN),
        ("Дмитро", "UKR", CyrillicLanguage.UKRAINIAN),
        ("Дмитро", None, CyrillicLanguage.RUSSIAN),
        ("Ольга", "BLR", CyrillicLanguage.BELARUSIAN),
    ],
)
def test_the_language_comes_from_its_letters_then_the_nationality(
    text: str, nationality: str | None, language: CyrillicLanguage
) -> None:
    assert cyrillic_language(text, nationality) is language


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Олександр Шевченко", "Oleksandr Shevchenko"),
        ("Александру Русу", "Alexandru Rusu"),
        ("Наталья Ковалёва", "Natalia Kovaleva"),
        ("Наталья Ковалёва", "Natalya Kovalyova"),
        ("Ștefan Munteanu", "Stefan Munteanu"),
        ("Ştefan Munteanu", "Stefan Munteanu"),  # cedilla instead of comma below
        ("Юлия Ермоленко", "Yuliia Yermolenko"),
        ("Ольга Гнатюк", "Olha Hnatiuk"),
        ("Аляксандр Лукашэнка", "Aliaksandr Lukashenka"),
        ("Михаил Кушнир", "Mihail Cușnir"),
        ("Ион Чобану", "Ion Ciobanu"),
        ("Фёдор Сергеев", "Fyodor Sergeev"),
        ("Андрієнко Євген", "Andrienko Evhen"),
        ("Вольга Харкевіч", "Volha Kharkevich"),
    ],
)
def test_one_person_in_two_scripts_has_one_key(first: str, second: str) -> None:
    assert comparison_key(first) == comparison_key(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [("Maria Rusu", "Elena Rusu"), ("Ion Popescu", "Ion Popa"), ("Ana", "Anna Maria")],
)
def test_different_names_keep_different_keys(first: str, second: str) -> None:
    assert comparison_key(first) != comparison_key(second)


def test_member_keys_use_one_system_for_both_names() -> None:
    # "Дмитро" alone would read as Russian; the Ukrainian "і" in the family name decides.
    keys = name_keys("Дмитро", "Коваленко-Білик", None)
    assert keys.given_key == name_keys("Dmytro", "Kovalenko-Bilyk", None).given_key
    assert keys.family_key == "kovalenko bilik"
    assert keys.family_initial == "k"
    assert keys.family_phonetic and keys.given_phonetic


def test_a_single_name_has_no_family_keys() -> None:
    keys = name_keys("Ahmad", None, "AFG")
    assert (keys.family_key, keys.family_phonetic, keys.family_initial) == ("", "", "")
    assert keys.full_key == "agmad"


def test_document_numbers_compare_across_look_alike_scripts() -> None:
    assert document_number_key("КН 123-456") == document_number_key("kh123456") == "KH123456"


names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Mn"), whitelist_characters=" -'"),
    max_size=40,
)


@given(names)
def test_keys_are_plain_lowercase_words(text: str) -> None:
    key = comparison_key(text)
    assert all(ch == " " or "a" <= ch <= "z" for ch in key)
    assert "  " not in key and key == key.strip()


@given(names)
def test_keys_ignore_the_unicode_normal_form(text: str) -> None:
    assert comparison_key(text) == comparison_key(unicodedata.normalize("NFD", text))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzșțăîâабвгдеёжзийклмнопрстуфхцчшщъыьэюяєіїґў '-"))
def test_keys_ignore_case(text: str) -> None:
    assert comparison_key(text) == comparison_key(text.upper())
