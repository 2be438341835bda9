"""Read a DLMS/COSEM meter over TCP (IEC 62056-47 wrapper) with low-level security.

The gurux-dlms client builds and parses the APDUs; the transport is a plain blocking socket that
moves whole wrapper frames (8-octet header: version, source wPort, destination wPort, length).
The reader does not decode values: each GET answer is returned as a `DlmsFrame` carrying the raw
A-XDR `Data` the meter sent (hex), and the cloud translates it with the meter model's map.

Blocking API: `DlmsSession` (a context manager: association on enter, release on exit) and its
`read_*` methods. Async API for the agent's event loop: `read_load_profile`, `read_registers`,
`read_instantaneous`, `read_events` run a session in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, DataType, InterfaceType, ObjectType
from gurux_dlms.objects import GXDLMSClock, GXDLMSObject, GXDLMSProfileGeneric

from hemera.domain.dlms.model import DlmsMeterModel, load_dlms_model
from hemera.domain.envelope import DlmsFrame, DlmsRange, FrameKind

WRAPPER_HEADER = 8
# Meter reader client (IDIS: 16 public, 17 reader with LLS, 1 management) and the logical device.
DEFAULT_CLIENT_ADDRESS = 17
DEFAULT_SERVER_ADDRESS = 1
# One selective read per day of profile: 96 rows of ~37 octets stay far below the 64 KiB PDU
# and wrapper limits, so no block transfer is needed even for a week of backlog.
PROFILE_READ_SPAN = timedelta(days=1)
_CLOCK_OBIS = "0.0.1.0.0.255"
_CLASS_REGISTER, _CLASS_EXTENDED_REGISTER, _CLASS_PROFILE = 3, 4, 7


class DlmsReadError(Exception):
    """The meter refused or failed a request (association, GET, ACTION) or the link broke."""


class DlmsAssociationRefused(DlmsReadError):
    """The meter refused the association (wrong password, unknown client)."""


@dataclass(frozen=True, slots=True)
class DlmsEndpoint:
    host: str
    port: int
    password: str
    client_address: int = DEFAULT_CLIENT_ADDRESS
    server_address: int = DEFAULT_SERVER_ADDRESS
    timeout_s: float = 10.0


def _cosem(obis: str, class_id: int) -> GXDLMSObject:
    return GXDLMSObject(ObjectType(class_id), obis)


class DlmsSession:
    """One association with a meter; GETs answer with the raw A-XDR of the attribute value."""

    def __init__(self, endpoint: DlmsEndpoint) -> None:
        self.endpoint = endpoint
        self.requests = 0
        self._client = GXDLMSClient(
            True,
            endpoint.client_address,
            endpoint.server_address,
            Authentication.LOW,
            endpoint.password,
            InterfaceType.WRAPPER,
        )
        self._sock: socket.socket | None = None

    # --- association -------------------------------------------------------------------------
    def open(self) -> DlmsSession:
        try:
            self._sock = socket.create_connection(
                (self.endpoint.host, self.endpoint.port), timeout=self.endpoint.timeout_s
            )
        except OSError as exc:
            raise DlmsReadError(f"cannot reach {self.endpoint.host}:{self.endpoint.port}: {exc}") from exc
        reply = self._exchange(self._client.aarqRequest())
        try:
            self._client.parseAareResponse(reply.data)
        except Exception as exc:  # gurux raises GXDLMSException / ValueError for a refused AARE
            self.close(release=False)
            raise DlmsAssociationRefused(f"meter refused the association: {exc}") from exc
        return self

    def close(self, release: bool = True) -> None:
        if self._sock is None:
            return
        try:
            if release:
                self._exchange(self._client.releaseRequest())
        except DlmsReadError:
            pass  # the meter may drop the link on release; nothing is lost
        finally:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> DlmsSession:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(release=exc_type is None)

    # --- transport ---------------------------------------------------------------------------
    def _recv_exact(self, n: int) -> bytes:
        assert self._sock is not None
        data = bytearray()
        while len(data) < n:
            try:
                chunk = self._sock.recv(n - len(data))
            except OSError as exc:
                raise DlmsReadError(f"link to the meter failed: {exc}") from exc
            if not chunk:
                raise DlmsReadError("the meter closed the connection")
            data += chunk
        return bytes(data)

    def _exchange(self, frames: Iterable[Any]) -> Any:
        """Send request frames, collect the answer (following block transfer) into a reply."""
        if self._sock is None:
            raise DlmsReadError("session is not open")
        reply = GXReplyData()
        pending: list[Any] = list(frames)
        while pending:
            for frame in pending:
                self.requests += 1
                try:
                    self._sock.sendall(bytes(frame))
                except OSError as exc:
                    raise DlmsReadError(f"link to the meter failed: {exc}") from exc
                header = self._recv_exact(WRAPPER_HEADER)
                body = self._recv_exact(int.from_bytes(header[6:8], "big"))
                try:
                    self._client.getData(GXByteBuffer(header + body), reply)
                except Exception as exc:  # gurux raises plain exceptions for error answers
                    raise DlmsReadError(f"meter answered an error: {exc}") from exc
            pending = [self._client.receiverReady(reply)] if reply.isMoreData() else []
        if reply.error:
            raise DlmsReadError(f"meter answered data-access-result {reply.error}: {reply.errorMessage}")
        return reply

    # --- reads -------------------------------------------------------------------------------
    def get(self, obis: str, class_id: int, attribute: int) -> bytes:
        """GET one attribute; the raw A-XDR `Data` of its value."""
        reply = self._exchange(self._client.read(_cosem(obis, class_id), attribute))
        return bytes(reply.data.array())

    def get_frame(self, kind: FrameKind, obis: str, class_id: int, attribute: int) -> DlmsFrame:
        data = self.get(obis, class_id, attribute)
        return DlmsFrame(kind=kind, obis=obis, class_id=class_id, attribute=attribute, data=data.hex())

    def read_profile_range(self, kind: FrameKind, obis: str, since: datetime, until: datetime) -> DlmsFrame:
        """Selective GET (range_descriptor on the clock column) of a profile's buffer.

        `since`/`until` are tz-aware capture times, both inclusive, as the meter applies them.
        For a load profile whose clock marks the interval's end, pass the end of the first
        interval you want (or the last capture you have + 1 s).
        """
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("since/until must be tz-aware")
        profile = GXDLMSProfileGeneric(obis)
        profile.addCaptureObject(GXDLMSClock(_CLOCK_OBIS), 2, 0)
        reply = self._exchange(
            self._client.readRowsByRange(profile, since.astimezone(UTC), until.astimezone(UTC))
        )
        return DlmsFrame(
            kind=kind,
            obis=obis,
            class_id=_CLASS_PROFILE,
            attribute=2,
            selector=DlmsRange.model_validate({"from": since, "to": until}),
            data=bytes(reply.data.array()).hex(),
        )

    def read_load_profile(self, model: DlmsMeterModel, since: datetime, until: datetime) -> list[DlmsFrame]:
        """The load profile between two capture times, one frame per `PROFILE_READ_SPAN`."""
        frames: list[DlmsFrame] = []
        low = since
        while low <= until:
            high = min(until, low + PROFILE_READ_SPAN - timedelta(seconds=1))
            frames.append(self.read_profile_range(FrameKind.LOAD_PROFILE, model.load_profile.obis, low, high))
            low = high + timedelta(seconds=1)
        return frames

    def read_objects(self, kind: FrameKind, specs: Iterable[tuple[str, int]]) -> list[DlmsFrame]:
        """Value and scaler_unit of registers (class 3), plus status and capture time of extended
        registers (class 4): one frame per attribute."""
        frames: list[DlmsFrame] = []
        for obis, class_id in specs:
            attributes = {_CLASS_REGISTER: (2, 3), _CLASS_EXTENDED_REGISTER: (2, 3, 4, 5)}.get(class_id, (2,))
            frames += [self.get_frame(kind, obis, class_id, a) for a in attributes]
        return frames

    def read_registers(self, model: DlmsMeterModel) -> list[DlmsFrame]:
        return self.read_objects(
            FrameKind.REGISTERS, ((s.obis, s.class_id) for s in model.registers.values())
        )

    def read_instantaneous(self, model: DlmsMeterModel) -> list[DlmsFrame]:
        return self.read_objects(
            FrameKind.INSTANTANEOUS, ((s.obis, s.class_id) for s in model.instantaneous.values())
        )

    def read_events(self, model: DlmsMeterModel, since: datetime | None = None) -> list[DlmsFrame]:
        """Every event log of the model: whole, or the entries captured at/after `since`."""
        frames: list[DlmsFrame] = []
        for spec in model.events.values():
            if since is None:
                frames.append(self.get_frame(FrameKind.EVENTS, spec.obis, spec.class_id, 2))
            else:
                far = datetime(2099, 12, 31, tzinfo=UTC)
                frames.append(self.read_profile_range(FrameKind.EVENTS, spec.obis, since, far))
        return frames

    def read_clock(self) -> bytes:
        return self.get(_CLOCK_OBIS, 8, 2)

    def operate_disconnect_control(self, model: DlmsMeterModel, connect: bool) -> None:
        """ACTION remote_reconnect (method 2) or remote_disconnect (method 1), class 70."""
        spec = model.disconnect_control
        if spec is None:
            raise DlmsReadError(f"meter model {model.model} has no disconnect control")
        method = 2 if connect else 1
        self._exchange(self._client.method(_cosem(spec.obis, spec.class_id), method, 0, DataType.INT8))


# --- async entry points for the agent ---------------------------------------------------------
def _with_session(endpoint: DlmsEndpoint, model: str, work: Any) -> list[DlmsFrame]:
    spec = load_dlms_model(model)
    with DlmsSession(endpoint) as session:
        frames: list[DlmsFrame] = work(session, spec)
        return frames


async def read_load_profile(
    host: str,
    port: int,
    password: str,
    since: datetime,
    until: datetime,
    *,
    model: str = "hd500",
    client_address: int = DEFAULT_CLIENT_ADDRESS,
    timeout_s: float = 10.0,
) -> list[DlmsFrame]:
    """Load-profile frames with capture times in [since, until] (one association, one frame/day)."""
    endpoint = DlmsEndpoint(host, port, password, client_address=client_address, timeout_s=timeout_s)
    return await asyncio.to_thread(
        _with_session, endpoint, model, lambda s, m: s.read_load_profile(m, since, until)
    )


async def read_registers(
    host: str, port: int, password: str, *, model: str = "hd500", timeout_s: float = 10.0
) -> list[DlmsFrame]:
    endpoint = DlmsEndpoint(host, port, password, timeout_s=timeout_s)
    return await asyncio.to_thread(_with_session, endpoint, model, lambda s, m: s.read_registers(m))


async def read_instantaneous(
    host: str, port: int, password: str, *, model: str = "hd500", timeout_s: float = 10.0
) -> list[DlmsFrame]:
    endpoint = DlmsEndpoint(host, port, password, timeout_s=timeout_s)
    return await asyncio.to_thread(_with_session, endpoint, model, lambda s, m: s.read_instantaneous(m))


async def read_events(
    host: str,
    port: int,
    password: str,
    since: datetime | None = None,
    *,
    model: str = "hd500",
    timeout_s: float = 10.0,
) -> list[DlmsFrame]:
    endpoint = DlmsEndpoint(host, port, password, timeout_s=timeout_s)
    return await asyncio.to_thread(_with_session, endpoint, model, lambda s, m: s.read_events(m, since))
