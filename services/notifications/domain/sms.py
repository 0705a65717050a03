"""How many SMS segments a text takes: GSM-7 (3GPP TS 23.038) when it fits, else UCS-2.

GSM-7 packs 160 septets in one message, 153 per part of a concatenated one (the user data
header takes the rest); characters of the extension table (``€ [ ] { } ^ ~ | \\`` and form
feed) take two septets (escape + character) and are never split across parts. UCS-2 takes
70 UTF-16 code units in one message, 67 per part; a surrogate pair (e.g. an emoji) is never
split.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class SmsSize:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def sms_size(text: str) -> SmsSize:
    """The encoding an SMS gateway will choose for ``text`` and the segments it will bill."""
    if is_gsm7(text):
        widths = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return SmsSize(Encoding.GSM7, sum(widths), _segments(widths, GSM7_SINGLE, GSM7_PART))
    widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return SmsSize(Encoding.UCS2, sum(widths), _segments(widths, UCS2_SINGLE, UCS2_PART))


def _segments(widths: list[int], single: int, part: int) -> int:
    """Parts needed when characters of the given widths may not straddle two parts."""
    if sum(widths) <= single:
        return 1
    parts, used = 1, 0
    for width in widths:
        if used + width > part:
            parts, used = parts + 1, 0
        used += width
    return parts
