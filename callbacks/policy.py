"""Which numbers the centre may dial back: the outbound number policy.

A callback dials a number that came from outside — digits a caller typed, a caller ID that
became a missed-call or voicemail task — through the centre's trunk, at the centre's cost and
in its name. Left open, anyone who can call the hotline can make it dial an emergency
service, a premium-rate line or the other side of the world. So every such number is judged
here before a task is stored (``callbacks/tasks.py``), with Google's libphonenumber data
(``phonenumbers``):

1. emergency numbers (112, 911, ... in the home country or the number's own) — never;
2. a number starting with one of ``callbacks.numbers.prefixes`` — allowed (the centre's own
   ranges, test numbers);
3. short codes and numbers that are no valid number — refused;
4. a number of another country than the home one (``dialer.region``) and
   ``callbacks.numbers.countries`` — refused (international);
5. a type not in ``callbacks.numbers.types`` — refused (default: fixed line, mobile and
   toll-free; premium-rate, shared-cost, personal, pager, UAN, VoIP, voicemail refused).
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from telephonist.core.centre import NUMBER_TYPES, CallbackNumbers
from telephonist.core.numbers import NumberError, Numbering, digits_of

TYPE_NAMES = {name: getattr(PhoneNumberType, name.upper()) for name in NUMBER_TYPES}
"""The names the centre file uses (``core.centre.NUMBER_TYPES``) -> libphonenumber's types."""
_NAME_OF = {v: k for k, v in TYPE_NAMES.items()}
WHY = {
    "emergency": "an emergency number",
    "short_code": "a short code",
    "invalid": "not a valid phone number",
    "international": "a number abroad",
}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    """``prefix`` / ``type:<name>`` when allowed; ``emergency``, ``short_code``, ``invalid``,
    ``international`` or ``type:<name>`` when refused."""

    @property
    def why(self) -> str:
        """The reason in words, for logs, the CLI and events."""
        if self.reason.startswith("type:"):
            kind = self.reason.removeprefix("type:").replace("_", "-")
            return f"a {kind} number" if self.allowed else f"a {kind} number (not allowed)"
        return WHY.get(self.reason, self.reason)


class NumberPolicy:
    """``check(number)``: may the centre dial ``number`` back?

    >>> p = NumberPolicy(CallbackNumbers(), "US")
    >>> [p.check(n).reason for n in ("112", "911", "+19005551234", "+442071234567")]
    ['emergency', 'emergency', 'type:premium_rate', 'international']
    >>> [p.check(n).allowed for n in ("2125550101", "+12125550101", "18005551234")]
    [True, True, True]
    >>> p.check("0112125550101").reason, p.check("5571009").reason
    ('invalid', 'invalid')
    >>> NumberPolicy(CallbackNumbers(prefixes=["557"]), "US").check("5571009")
    Verdict(allowed=True, reason='prefix')
    >>> NumberPolicy(CallbackNumbers(countries=["GB"]), "US").check("011442071234567")
    Verdict(allowed=True, reason='type:fixed_line')
    """

    def __init__(self, rules: CallbackNumbers, home_region: str) -> None:
        self.rules = rules
        self.numbering = Numbering(home_region)
        self.home = self.numbering.region
        self.countries = {self.home, *(c.upper() for c in rules.countries)}
        self.types = {TYPE_NAMES[t] for t in rules.types}

    def identity(self, number: str, field: str = "number") -> str:
        """The customer's key for ``number`` (:meth:`core.numbers.Numbering.identity`)."""
        return self.numbering.identity(number, field)

    def check(self, number: str) -> Verdict:
        try:
            written = digits_of(number).lstrip("+")
            parsed = self.numbering.parse(number)
            ident = self.numbering.identity(number)
        except NumberError:
            return Verdict(False, "invalid")
        # The same number as written, as dialled at home and as E.164 digits: prefixes and
        # emergency codes are looked for in each.
        forms = {written, self.numbering.say(ident), ident.lstrip("+")}
        regions = {self.home}
        if parsed is not None:
            regions.add(phonenumbers.region_code_for_number(parsed) or "ZZ")
        for region in regions - {"ZZ"}:
            if shortnumberinfo.connects_to_emergency_number(written, region):
                return Verdict(False, "emergency")
        if any(f.startswith(p) for f in forms for p in self.rules.prefixes):
            return Verdict(True, "prefix")
        if len(written) <= 6 or parsed is None or not phonenumbers.is_valid_number(parsed):
            short = parsed is not None and shortnumberinfo.is_valid_short_number(parsed)
            return Verdict(False, "short_code" if short or len(written) <= 6 else "invalid")
        if phonenumbers.region_code_for_number(parsed) not in self.countries:
            return Verdict(False, "international")
        kind = phonenumbers.number_type(parsed)
        name = _NAME_OF.get(kind, "unknown")
        return Verdict(kind in self.types, f"type:{name}")
