"""A meter's market identity: its NMI (National Metering Identifier, Australia's NEM) and the
meter's serial number, as the tenant file registers them and NEM12 carries them.

NMI (AEMO, MSATS Procedures: National Metering Identifier, v6.0 and later):
- 10 characters, digits and upper-case letters; the letters I and O are never allocated (they
  read as 1 and 0). The NMI identifies the connection point, not the meter.
- A checksum digit (0-9) travels beside it (bills print it as an 11th character; aseXML carries it
  as `checksum`; NEM12 carries only the 10 characters). AEMO's algorithm ("NMI checksum"
  appendix): take the ASCII value of each of the 10 characters; starting with the right-most,
  double every second value; add up the decimal digits of all values (doubled or not); the
  checksum is the distance from that sum up to the next multiple of 10. Worked examples of the
  procedure: `2001985732` -> 8, `QAAAVZZZZZ` -> 3, `VKTS876510` -> 8.

Serial: NEM12's 200 record field `MeterSerialNumber` is Varchar(12) (MDFF Specification NEM12 &
NEM13, section 4.3), so a serial is 1-12 printable characters without a comma (the file is CSV).
"""

from __future__ import annotations

NMI_LENGTH = 10
# Digits and upper-case letters without I and O (AEMO NMI Procedure: I and O are not allocated).
NMI_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
# NEM12 200 record MeterSerialNumber: Varchar(12).
SERIAL_MAX_LENGTH = 12


def nmi_checksum(nmi: str) -> int:
    """AEMO's checksum digit of a 10-character NMI (see the module docstring).

    ValueError if `nmi` is not 10 characters of the NMI alphabet."""
    _check_characters(nmi)
    total = 0
    for position, character in enumerate(reversed(nmi)):
        value = ord(character) * (2 if position % 2 == 0 else 1)
        total += sum(int(digit) for digit in str(value))
    return (10 - total % 10) % 10


def _check_characters(nmi: str) -> None:
    if len(nmi) != NMI_LENGTH:
        raise ValueError(f"an NMI has {NMI_LENGTH} characters, {nmi!r} has {len(nmi)}")
    wrong = sorted({c for c in nmi if c not in NMI_ALPHABET})
    if wrong:
        raise ValueError(
            f"NMI {nmi!r} holds {', '.join(repr(c) for c in wrong)}: an NMI is digits and upper-case "
            "letters without I and O"
        )


def parse_nmi(text: str) -> str:
    """The 10-character NMI of `text`: the NMI alone (10 characters) or followed by its checksum
    digit (11 characters, as bills print it), which must be AEMO's checksum of the 10.

    ValueError naming what is wrong (length, characters, the checksum it should have)."""
    if len(text) == NMI_LENGTH + 1:
        nmi, given = text[:NMI_LENGTH], text[NMI_LENGTH]
        expected = nmi_checksum(nmi)
        if given != str(expected):
            raise ValueError(
                f"NMI {nmi!r} has checksum {expected}, not {given!r} ({text!r} is mistyped or not an NMI)"
            )
        return nmi
    if len(text) != NMI_LENGTH:
        raise ValueError(
            f"an NMI has {NMI_LENGTH} characters ({NMI_LENGTH + 1} with its checksum digit), "
            f"{text!r} has {len(text)}"
        )
    _check_characters(text)
    return text


def check_serial(serial: str) -> str:
    """`serial` if it fits NEM12's MeterSerialNumber (1-12 printable characters, no comma)."""
    if not 1 <= len(serial) <= SERIAL_MAX_LENGTH:
        raise ValueError(
            f"a meter serial has 1-{SERIAL_MAX_LENGTH} characters (NEM12), {serial!r} has {len(serial)}"
        )
    if not serial.isprintable() or "," in serial or serial != serial.strip():
        raise ValueError(f"meter serial {serial!r} must be printable, without commas or outer spaces")
    return serial
