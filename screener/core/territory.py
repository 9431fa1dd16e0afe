"""Where a work is protected, where a licence holds, where a work's own thresholds apply.

A copyright, a licence or an exemption may hold in some jurisdictions only. Each is an
optional set of ISO 3166-1 alpha-2 codes; an empty set means everywhere. A check names
the territory its output is released in; a match against a work not protected there is
reported but does not hold the output.

A check whose territory is unknown is treated as released everywhere: every work is
protected, and a licence or a work's own thresholds limited to some territories do not
apply (the hold cannot be lifted by a territory nobody named).
"""

from __future__ import annotations

from collections.abc import Iterable

from screener.core.errors import InputError

# The 249 officially assigned ISO 3166-1 alpha-2 codes.
ISO_3166_ALPHA2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - a block of codes reads better than 249 quoted strings
)
MAX_TERRITORIES = 249


def code(value: object) -> str:
    """One territory code, upper-cased; an :class:`InputError` for anything else."""
    if not isinstance(value, str) or value.strip().upper() not in ISO_3166_ALPHA2:
        shown = repr(value)[:40]
        raise InputError(
            f"territory {shown} is not an ISO 3166-1 alpha-2 code (two letters, e.g. CN, US)"
        )
    return value.strip().upper()


def codes(values: Iterable[object]) -> tuple[str, ...]:
    """A set of territory codes, sorted; empty means everywhere."""
    found = sorted({code(v) for v in values})
    if len(found) > MAX_TERRITORIES:
        raise InputError(f"at most {MAX_TERRITORIES} territories")
    return tuple(found)


def of_check(given: str | None, default: str | None) -> str | None:
    """The territory a check applies: the one the caller named, else its default."""
    if given is not None and given.strip():
        return code(given)
    return None if default is None else code(default)


def covers(territories: Iterable[str], territory: str | None) -> bool:
    """Whether a protection limited to ``territories`` (empty: everywhere) holds for a
    release in ``territory`` (None: unknown, so everywhere)."""
    limited = tuple(territories)
    return not limited or territory is None or territory in limited


def grants(territories: Iterable[str], territory: str | None) -> bool:
    """Whether a licence or exemption limited to ``territories`` (empty: everywhere)
    applies to a release in ``territory`` (None: unknown, so only an unlimited one)."""
    limited = tuple(territories)
    return not limited or (territory is not None and territory in limited)
