"""Recognise junk identifiers: the dummy values checkouts and store staff type for "none".

A value like ``noemail@shop.de`` or ``+49 151 11111111`` is shared by every customer who
gave no real one, so linking on it would merge strangers into one person. Everything here
only *recognises* junk and says why; the caller decides to drop the identifier.
Reasons name the rule (and the dummy value it matched), never a real person's value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

# ---------------------------------------------------------------------------------------------
# E-mail
# ---------------------------------------------------------------------------------------------

#: Local parts that say "no e-mail" on any domain; compared with the local part of the
#: normalized address, before any ``+suffix``. Grouped by what the typist meant.
DUMMY_EMAIL_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        # "no e-mail", English and German
        *("noemail", "no-email", "no.email", "no_email"),
        *("nomail", "no-mail", "no.mail", "no_mail"),
        *("keine", "keinemail", "keine-email", "keine.email", "keine_email", "keinemailadresse"),
        *("kein", "keinmail", "kein-mail", "kein.mail", "ohne", "ohnemail", "ohne-email"),
        *("none", "null", "nil", "nix", "nichts", "unknown", "unbekannt"),
        # the customer as a role, not a person
        *("guest", "gast", "kunde", "kunden", "kundin", "customer", "client"),
        # tests, placeholders, keyboard mashing
        *("test", "tester", "testing", "dummy", "fake", "asdf", "qwertz", "qwerty"),
        *("anonymous", "anonym", "anon"),
        # system senders, never a customer's mailbox
        *("noreply", "no-reply", "no.reply", "no_reply"),
        *("donotreply", "do-not-reply", "do.not.reply", "do_not_reply"),
    }
)

#: Regexes matched with ``re.fullmatch`` against the normalized e-mail. Extras come from
#: configuration (:meth:`JunkRules.default`).
DEFAULT_JUNK_EMAIL_PATTERNS: tuple[str, ...] = (
    # A local part of one character repeated (``xx@``, ``aaa@``, ``000@``, ``...@``), or a
    # lone ``x`` / ``0``. A single other letter (``a@firma.de``) can be a real mailbox.
    r"([^@])\1+@.+",
    r"[x0]@.+",
    # Placeholder local part repeated as the domain: a@a.de, test@test.com, mail@mail.de.
    r"(a|abc|asdf|email|e-mail|mail|test|x|xxx)@\1\.[a-z.]+",
    # Role addresses at RFC 2606 example domains. Other example.* addresses stay valid:
    # tests across the project use them for real-looking people.
    r"(info|mail|email|e-mail|kontakt|contact|kunde|customer)@example\.(com|org|net)",
    # Germany's textbook placeholder person (Max / Erika Mustermann), on any domain.
    r"(max|erika)[._-]?mustermann@.+",
)

#: Domains of throw-away mailboxes, matched with ``re.fullmatch`` against the domain; a
#: subdomain of them counts too. Such a mailbox is gone tomorrow and shared by anyone who
#: types its name, so it names no one.
DISPOSABLE_EMAIL_DOMAIN_PATTERNS: tuple[str, ...] = (
    r"mailinator\.com",
    r"trashmail\.[a-z]+",
    r"wegwerfmail\.(de|net|org)",
    r"10minutemail\.[a-z]+",
    r"guerrillamail\.[a-z]+",
    r"sharklasers\.com",
    r"yopmail\.[a-z]+",
    r"temp-?mail\.[a-z]+",
    r"throwawaymail\.com",
    r"dispostable\.com",
    r"spamgourmet\.com",
    r"einrot\.com",
    r"byom\.de",
)

_DISPOSABLE = tuple(re.compile(rf"(?:[a-z0-9-]+\.)*{p}") for p in DISPOSABLE_EMAIL_DOMAIN_PATTERNS)

# ---------------------------------------------------------------------------------------------
# Any identifier kind
# ---------------------------------------------------------------------------------------------

#: Casefolded raw values that stand for "nothing" whatever the field (customer id, card,
#: payment token, name, street ...). Compared after trimming and removing wrapping
#: brackets or quotes, so ``<null>``, ``(none)`` and ``"N/A"`` count too. Deliberately absent
#: although seen as placeholders: ``na``, ``ka``, ``nix`` (the surnames Na, Ka, Nix).
JUNK_VALUES: frozenset[str] = frozenset(
    {
        # programming and spreadsheet "no value"
        *("null", "none", "nil", "nan", "undefined", "#n/a", "#na", "-1"),
        # "not given", English
        *("n/a", "n.a.", "n.a", "unknown", "not provided", "not available", "no"),
        *("anonymous", "anonym", "anon", "guest", "customer", "test", "dummy", "fake"),
        # "not given", German (k.A. = keine Angabe)
        *("keine", "kein", "ohne", "nichts", "leer", "unbekannt", "nein"),
        *("k.a.", "k.a", "keine angabe", "nicht angegeben", "gast", "kunde"),
        # placeholders
        *("-", "--", "0", "000", "x", "xx", "xxx", "xxxx", "empty", "asdf"),
    }
)

_WRAPPING = "()[]{}<>\"'`"
_NO_ALNUM = re.compile(r"[\W_]*")
_ZEROS = re.compile(r"[\W_]*0[\W0_]*")
_XS = re.compile(r"x+")


@lru_cache(maxsize=65536)
def junk_value_reason(raw: str) -> str | None:
    """Why a raw value of any identifier kind is junk, or None; the rules of ``value_reason``.

    Kept per value: every part of every order's address and name is asked about.
    """
    value = raw.strip().casefold()
    if not value:
        return "empty value"
    if value.strip(_WRAPPING).strip() in JUNK_VALUES:
        return f"placeholder value '{value.strip(_WRAPPING).strip()}'"
    if _NO_ALNUM.fullmatch(value):
        return "only punctuation"
    if _ZEROS.fullmatch(value):
        return "only zeros"
    if _XS.fullmatch(value):
        return "only the letter x"
    return None


@dataclass(frozen=True, slots=True)
class JunkRules:
    """The configured junk rules: the e-mail patterns, default ones plus the shop's extras,
    and the shop's own placeholder phone numbers."""

    email_patterns: tuple[re.Pattern[str], ...]
    phone_patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def default(
        cls, extra_email_patterns: Sequence[str] = (), phone_patterns: Sequence[str] = ()
    ) -> JunkRules:
        """Default e-mail patterns plus configured extras, and the configured phone patterns
        (matched against the E.164 form); an invalid regex raises ValueError."""
        return cls(
            _compiled((*DEFAULT_JUNK_EMAIL_PATTERNS, *extra_email_patterns), "e-mail"),
            _compiled(phone_patterns, "phone"),
        )

    def phone_reason(self, e164: str) -> str | None:
        """Why a number in E.164 is one of the shop's placeholder numbers, or None."""
        for pattern in self.phone_patterns:
            if pattern.fullmatch(e164):
                return f"junk phone pattern '{pattern.pattern}'"
        return None

    def email_reason(self, normalized_email: str) -> str | None:
        """Why a normalized e-mail is junk, or None; case does not matter."""
        value = normalized_email.strip().casefold()
        local, _, domain = value.rpartition("@")
        if any(p.fullmatch(domain) for p in _DISPOSABLE):
            return f"disposable e-mail domain '{domain}'"
        base = local.split("+", 1)[0]
        if base in DUMMY_EMAIL_LOCAL_PARTS:
            return f"dummy e-mail local part '{base}'"
        for pattern in self.email_patterns:
            if pattern.fullmatch(value):
                return f"junk e-mail pattern '{pattern.pattern}'"
        return None

    def value_reason(self, raw: str) -> str | None:
        """Why a raw value of any kind is junk (``null``, ``n/a``, ``-``, ``000`` ...), or None."""
        return junk_value_reason(raw)


def _compiled(patterns: Sequence[str], what: str) -> tuple[re.Pattern[str], ...]:
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ValueError(f"invalid junk {what} pattern {pattern!r}: {exc}") from None
    return tuple(compiled)


# ---------------------------------------------------------------------------------------------
# Phone
# ---------------------------------------------------------------------------------------------

#: Numbers reserved for films, books and examples; they are never assigned to anyone.
_FICTIONAL_PHONES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), why)
    for pattern, why in (
        # Bundesnetzagentur "Drama Numbers" (Amtsblatt 7/2021): 1000 per city.
        (r"\+493023125\d{3}", "German drama number (Berlin)"),
        (r"\+496990009\d{3}", "German drama number (Frankfurt)"),
        (r"\+494066969\d{3}", "German drama number (Hamburg)"),
        (r"\+492214710\d{3}", "German drama number (Köln)"),
        (r"\+498999998\d{3}", "German drama number (München)"),
        (r"\+4915228817386", "German drama number (mobile)"),
        # NANP: 555-0100 to 555-0199 in every area code is for fiction.
        (r"\+1\d{3}55501\d{2}", "North American fictional 555-01xx number"),
        # Ofcom drama numbers: London, mobile, and the no-area 01632 range.
        (r"\+442079460\d{3}", "UK drama number"),
        (r"\+447700900\d{3}", "UK drama number"),
        (r"\+441632960\d{3}", "UK drama number"),
    )
)


_ASCENDING = "01234567890123456789"
_DESCENDING = "98765432109876543210"


def _tail_may_be_fake(national: str) -> bool:
    """False when no subscriber part (a tail of ``national``) can be all one digit: five
    equal digits end every such tail."""
    five = national[-5:]
    return len(five) == 5 and len(set(five)) == 1


def fake_phone_reason(e164: str) -> str | None:
    """Why an E.164 number cannot be anyone's, or None.

    Only numbers that no one can have: the ranges reserved for fiction, a subscriber part
    (what follows the area or network code as ``phonenumbers`` splits it, German mobiles:
    ``1511 2345678``) of one digit repeated, and a number its region's plan does not know
    whose digits are one run (``0123456789``: not a real number typed with a digit missing,
    which is why such numbers are kept otherwise). A number of another memorable shape (a
    digit run like ``0171 2345678``, a repeated block) can be a real customer's, who gives it
    on every order: it links, and when many persons type it as a placeholder, the
    cardinality rule flags it once it is shared. A shop's own placeholder numbers go in
    ``BESTAND_JUNK_PHONE_PATTERNS`` (:meth:`JunkRules.phone_reason`).
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "not an E.164 number"
    return fake_number_reason(number)


def fake_number_reason(number: phonenumbers.PhoneNumber) -> str | None:
    """:func:`fake_phone_reason` of a number parsed already."""
    national = phonenumbers.national_significant_number(number)
    # Splitting off the area code costs more than parsing; only a number whose last five
    # digits are one digit can have a subscriber part of one digit.
    subscriber = ""
    if _tail_may_be_fake(national):
        if phonenumbers.is_valid_number(number):
            subscriber = national[phonenumbers.length_of_national_destination_code(number) :]
        else:
            # The numbering plan knows no area code of a number it does not know: its tail
            # of one digit counts as the subscriber part after at most five digits of code.
            repeated = len(national) - len(national.rstrip(national[-1]))
            subscriber = national[-repeated:] if len(national) - repeated <= 5 else ""
    e164_form = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Reserved for fiction: German/UK drama numbers, North American 555-01xx.
    for pattern, why in _FICTIONAL_PHONES:
        if pattern.fullmatch(e164_form):
            return why
    # All subscriber digits equal: +49 151 11111111, +49 30 5555555.
    if len(subscriber) >= 5 and len(set(subscriber)) == 1:
        return "all subscriber digits are equal"
    # A number the numbering plan does not know links because it is likely a real number
    # typed with a digit missing or too many; not when all of it is a run (0123456789).
    if (national in _ASCENDING or national in _DESCENDING) and not phonenumbers.is_valid_number(
        number
    ):
        return "not a number of its region, and a digit run"
    return None
