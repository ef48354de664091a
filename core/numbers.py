"""Phone numbers: the vocabulary every capability shares (libphonenumber's data).

One customer, one key. Whatever way a number arrives — typed by a caller in the IVR
(``0612345678``), a caller ID (``+33612345678``, ``0033612345678``), a contact list
(``06 12 34 56 78``), the CLI — :meth:`Numbering.identity` gives the same string for it: the
E.164 form (``+33612345678``) for a number libphonenumber knows as valid in the centre's
region, else its plain digits (an extension, a test range, a number of a plan the data does not
cover). Callback tasks, their requesters, DNC entries and contacts are stored and compared by
that identity.

How a number is dialled is a property of the trunk it goes out through
(:data:`DIAL_FORMATS`, ``trunks[].dial_format`` and ``dial_prefix`` in the centre file):
:meth:`Numbering.dial` turns an identity into what the trunk expects. Only digits (and, for
``e164``, one leading ``+``) ever reach the dialplan.

A region is the country whose numbers are written without a country code (``dialer.region``,
``--region``); a wrong one is refused up front, before it silently makes every national
number invalid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

import phonenumbers

DialFormat = Literal["e164_digits", "e164", "national"]
DIAL_FORMATS: dict[str, str] = {
    "e164_digits": "country code and number, no + (12125550101, 33612345678): the default",
    "e164": "with the + (+12125550101)",
    "national": "numbers of the centre's country as dialled there (2125550101, 0612345678), "
    "others with its international prefix (011..., 00...)",
}

NUMBER_CHARS = re.compile(r"^[0-9 +\-().\/]+$")
"""What a written phone number may hold: digits, one leading +, and the usual separators."""


class NumberError(ValueError):
    """Not a phone number; the message names the field."""


def check_region(region: str, where: str = "region") -> str:
    """``region`` as an ISO 3166 code libphonenumber knows (upper case), or ValueError.

    >>> check_region("fr")
    'FR'
    >>> check_region("XX", "--region")
    Traceback (most recent call last):
    ...
    ValueError: --region: 'XX' is not a country code (ISO 3166, e.g. US, GB, FR)
    """
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{where}: {region!r} is not a country code (ISO 3166, e.g. US, GB, FR)")
    return code


def digits_of(raw: str, field: str = "number") -> str:
    """The number as written with its separators removed (``+`` kept in front), or
    :class:`NumberError` for anything else (``;``, letters, a second ``+``...).

    >>> digits_of(" (212) 555-0101 "), digits_of("+33 6 12 34 56 78")
    ('2125550101', '+33612345678')
    >>> digits_of("1;Hangup")
    Traceback (most recent call last):
    ...
    telephonist.core.numbers.NumberError: number: '1;Hangup' has characters other than digits ...
    """
    text = raw.strip()
    if not NUMBER_CHARS.fullmatch(text) or "+" in text[1:]:
        raise NumberError(f"{field}: {raw!r} has characters other than digits and + - ( ) . /")
    digits = re.sub(r"[^0-9]", "", text)
    if not 3 <= len(digits) <= 20:
        raise NumberError(f"{field}: {raw!r} is not a phone number (3 to 20 digits)")
    plus = text.startswith("+")
    return f"+{digits}" if plus else digits


@dataclass(frozen=True)
class Numbering:
    """The centre's numbering plan: its region, for numbers written without a country code.

    >>> fr = Numbering("FR")
    >>> {fr.identity(n) for n in ("06 12 34 56 78", "0612345678", "+33612345678",
    ...                           "0033612345678", "+33 (0)6 12 34 56 78")}
    {'+33612345678'}
    >>> fr.identity("5571009"), fr.identity("+5571009"), fr.identity("2001")
    ('5571009', '5571009', '2001')
    >>> us = Numbering("US")
    >>> us.identity("(212) 555-0101"), us.identity("1 212 555 0101")
    ('+12125550101', '+12125550101')
    """

    region: str = "US"

    def __post_init__(self) -> None:
        object.__setattr__(self, "region", check_region(self.region))

    def parse(self, raw: str, field: str = "number") -> phonenumbers.PhoneNumber | None:
        """The number libphonenumber reads in ``raw`` (None if it reads none); NumberError if
        ``raw`` is not a phone number at all."""
        text = digits_of(raw, field)
        # "+33 (0)6..." is written in France: the (0) is the trunk prefix, not a digit.
        text = re.sub(r"^(\+\d{1,3})0(?=[1-9])", r"\1", text) if "(0)" in raw else text
        try:
            return phonenumbers.parse(text, self.region)
        except phonenumbers.NumberParseException:
            return None

    def e164(self, raw: str, field: str = "number") -> tuple[str, phonenumbers.PhoneNumber, int]:
        """Strict: (E.164, the parsed number, its type) of a valid number, else NumberError
        with the reason (contact lists and DNC take valid numbers only). The type is worked out
        once: validity and the time zone both need it, and it is an import's costliest step.

        >>> Numbering("FR").e164("01 42 68 53 00")[0]
        '+33142685300'
        >>> Numbering("US").e164("555-0100")
        Traceback (most recent call last):
        ...
        telephonist.core.numbers.NumberError: number '555-0100' is not a valid number (region US)
        """
        parsed = self.parse(raw, field)
        kind = phonenumbers.number_type(parsed) if parsed is not None else -1
        if parsed is None or kind in (-1, phonenumbers.PhoneNumberType.UNKNOWN):
            raise NumberError(f"{field} {raw!r} is not a valid number (region {self.region})")
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), parsed, kind

    def identity(self, raw: str, field: str = "number") -> str:
        """The key of the customer behind ``raw``: E.164 when valid, else its digits."""
        parsed = self.parse(raw, field)
        if parsed is not None and phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return digits_of(raw, field).lstrip("+")

    def dial(self, identity: str, fmt: DialFormat = "e164_digits", prefix: str = "") -> str:
        """What to send to a trunk of format ``fmt`` for ``identity``; ``prefix`` (digits, e.g.
        a carrier's or an outside line's) goes in front, except in ``e164``.

        >>> fr = Numbering("FR")
        >>> [fr.dial("+33612345678", f) for f in ("e164_digits", "e164", "national")]
        ['33612345678', '+33612345678', '0612345678']
        >>> fr.dial("+12125550101", "national"), Numbering("US").dial("+33612345678", "national")
        ('0012125550101', '01133612345678')
        >>> Numbering("US").dial("+12125550101", "national")
        '2125550101'
        >>> fr.dial("5571009", "e164"), fr.dial("+33612345678", "national", prefix="9")
        ('5571009', '90612345678')
        """
        if prefix and not prefix.isdigit():
            raise NumberError(f"dial prefix {prefix!r}: digits only")
        if fmt == "e164":
            return digits_of(identity)
        if not identity.startswith("+"):
            return prefix + digits_of(identity)  # not an E.164 number: as stored
        if fmt == "national":
            parsed = phonenumbers.parse(identity, None)
            if parsed.country_code == phonenumbers.country_code_for_region(self.region):
                out = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            else:
                out = phonenumbers.format_out_of_country_calling_number(parsed, self.region)
            return prefix + digits_of(out)
        return prefix + identity[1:]

    def say(self, identity: str) -> str:
        """The digits a caller of this region would recognise (the callback read-back).

        >>> Numbering("FR").say("+33612345678"), Numbering("FR").say("5571009")
        ('0612345678', '5571009')
        """
        return self.dial(identity, "national").lstrip("+")


class TrunkFormat(Protocol):
    name: str
    dial_format: DialFormat
    dial_prefix: str


class Dialing:
    """Stored numbers to what each trunk is sent (its ``dial_format`` and ``dial_prefix``).

    >>> class T:
    ...     name, dial_format, dial_prefix = "eu", "national", ""
    >>> d = Dialing(Numbering("FR"), [T()])
    >>> d.string("+33612345678", "eu"), d.string("+33612345678", "unknown-trunk")
    ('0612345678', '33612345678')
    """

    def __init__(self, numbering: Numbering, trunks: Iterable[TrunkFormat] = ()) -> None:
        self.numbering = numbering
        self.formats = {t.name: (t.dial_format, t.dial_prefix) for t in trunks}

    def string(self, identity: str, trunk: str) -> str:
        """NumberError if ``identity`` is no number (a row stored by hand, an old version)."""
        fmt, prefix = self.formats.get(trunk, ("e164_digits", ""))
        return self.numbering.dial(identity, fmt, prefix)

    def say(self, identity: str) -> str:
        return self.numbering.say(identity)
