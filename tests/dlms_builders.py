"""Test data builders for DLMS: hd500 load-profile buffers (A-XDR) and envelopes carrying them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hemera.domain.dlms.axdr import Tag, array, encode, encode_datetime, structure
from hemera.domain.envelope import DlmsFrame, Envelope, FrameKind, Protocol, build_envelope

LOAD_PROFILE_OBIS = "1.0.99.1.0.255"


def hd500_buffer(first_capture: datetime, rows: list[tuple[int, int, int, int]], minutes: int = 15) -> bytes:
    """A ProfileGeneric buffer as an hd500 meter encodes it: (clock, A+, A-, R+, R-) per row."""
    return array(
        [
            structure(
                [
                    encode(Tag.OCTET_STRING, encode_datetime(first_capture + timedelta(minutes=minutes * i))),
                    *(encode(Tag.DOUBLE_LONG_UNSIGNED, v) for v in row),
                ]
            )
            for i, row in enumerate(rows)
        ]
    )


def hd500_envelope(
    tenant: str, device: str, meter: str, first_capture: datetime, active_import_wh: list[int], seq: int = 1
) -> Envelope:
    """A DLMS envelope of one load-profile frame; the first row's clock closes the first interval."""
    data = hd500_buffer(first_capture, [(wh, 0, wh // 4, 0) for wh in active_import_wh])
    frame = DlmsFrame(
        kind=FrameKind.LOAD_PROFILE, obis=LOAD_PROFILE_OBIS, class_id=7, attribute=2, data=data.hex()
    )
    return hd500_frames_envelope(tenant, device, meter, datetime.now(UTC), [frame], seq)


def hd500_frames_envelope(
    tenant: str, device: str, meter: str, collected_at: datetime, frames: list[DlmsFrame], seq: int = 1
) -> Envelope:
    """An hd500 (DLMS) envelope carrying `frames` as the agent would send them."""
    return build_envelope(
        tenant=tenant,
        device=device,
        meter=meter,
        model="hd500",
        protocol=Protocol.DLMS,
        seq=seq,
        collected_at=collected_at,
        frames=frames,
    )
