"""DLMS/COSEM meter reading for the agent (gurux-dlms client over a TCP wrapper socket)."""

from hemera_agent.dlms.reader import (
    DlmsAssociationRefused,
    DlmsEndpoint,
    DlmsReadError,
    DlmsSession,
    read_events,
    read_instantaneous,
    read_load_profile,
    read_registers,
)

__all__ = [
    "DlmsAssociationRefused",
    "DlmsEndpoint",
    "DlmsReadError",
    "DlmsSession",
    "read_events",
    "read_instantaneous",
    "read_load_profile",
    "read_registers",
]
