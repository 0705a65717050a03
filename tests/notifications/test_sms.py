"""SMS segment counting: GSM-7 with its extension table, UCS-2 for everything else."""

from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    is_gsm7,
    sms_size,
)


def test_plain_english_is_gsm7_and_fits_160_septets_in_one_segment() -> None:
    assert sms_size("a" * 160) == sms_size("a" * 160)
    one = sms_size("a" * 160)
    assert (one.encoding, one.units, one.segments) == (Encoding.GSM7, 160, 1)
    assert sms_size("a" * 161).segments == 2  # concatenated parts carry 153 each
    assert sms_size("a" * 306).segments == 2
    assert sms_size("a" * 307).segments == 3


def test_extension_characters_take_two_septets_and_are_never_split() -> None:
    assert sms_size("€" * 80).units == 160
    assert sms_size("€" * 80).segments == 1
    assert sms_size("€" * 81).segments == 2
    # 152 septets then a two-septet character: it cannot straddle, so part 2 starts with it
    text = "a" * 152 + "€" + "a" * 152
    size = sms_size(text)
    assert size.units == 306
    assert size.segments == 3


def test_cyrillic_and_romanian_diacritics_need_ucs2() -> None:
    ukrainian = sms_size("Номер справи: MDA-PAL-000123")
    assert ukrainian.encoding is Encoding.UCS2
    romanian = sms_size("Păstrați numărul dosarului")
    assert romanian.encoding is Encoding.UCS2  # ă, ț are not in GSM 03.38
    assert sms_size("Ж" * 70).segments == 1
    assert sms_size("Ж" * 71).segments == 2
    assert sms_size("Ж" * 134).segments == 2
    assert sms_size("Ж" * 135).segments == 3


def test_gsm7_accented_letters_stay_gsm7() -> None:
    assert is_gsm7("Café, città, Müller, Ñoño, Øre, Straße")
    assert not is_gsm7("forêt")  # ê is not in GSM 03.38
    assert not is_gsm7("ș")


def test_emoji_are_surrogate_pairs_and_never_split() -> None:
    assert sms_size("🙂").units == 2
    assert sms_size("🙂" * 35).segments == 1
    # 66 units then a pair: the pair moves to the next part
    assert sms_size("Ж" * 66 + "🙂" + "Ж" * 66).segments == 3


@given(st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=800))
def test_gsm7_segments_hold_every_septet(text: str) -> None:
    size = sms_size(text)
    assert size.encoding is Encoding.GSM7
    capacity = 160 if size.segments == 1 else 153 * size.segments
    assert size.units <= capacity
    assert size.segments == 1 or size.units > 160


@given(st.text(max_size=400))
def test_segments_are_at_least_one_and_monotonic_in_length(text: str) -> None:
    size = sms_size(text)
    assert size.segments >= 1
    assert sms_size(text + text).segments >= size.segments
