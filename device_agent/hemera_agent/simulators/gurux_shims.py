"""Every work-around for the Python port of gurux-dlms 1.0.203 that the DLMS simulator needs.

The port was translated from the Java/C# library and a few server-side call sites still call
methods that the Python classes never got, or call hooks with other arguments than the abstract
signatures declare. Each shim below names the call site it satisfies; delete a shim once the
pinned gurux-dlms release fixes that call site (and the round-trip test still passes).
"""

from __future__ import annotations

from typing import Any

from gurux_dlms import GXDLMSServer, GXServerReply
from gurux_dlms.ValueEventArgs import ValueEventArgs


class ServerReply(GXServerReply):
    """`GXServerReply` with the accessors `GXDLMSServer` calls on it.

    `GXDLMSServer.handleRequest` answers with `sr.setReply(...)` and `handleCommand` passes
    `sr.getConnectionInfo()` to the AARQ/action handlers; `handleGeneralBlockTransfer` uses
    `sr.getCount()`/`sr.setCount()`. The Python `GXServerReply` only has the plain attributes
    `reply`, `connectionInfo` and `count`, so each of these calls raised AttributeError.
    """

    def setReply(self, value: Any) -> None:
        self.reply = value

    def getReply(self) -> Any:
        return self.reply

    def getConnectionInfo(self) -> Any:
        return self.connectionInfo

    def getCount(self) -> int:
        return int(self.count)

    def setCount(self, value: int) -> None:
        self.count = value


class ShimmedServer(GXDLMSServer):
    """`GXDLMSServer` with the hooks `GXDLMSLNCommandHandler` really calls.

    - `handleGetRequest` (normal GET) calls `server.notifyRead()` and `server.onPostRead()` with
      no argument instead of `onPreRead([args])` / `onPostRead([args])`; `notifyRead` does not
      exist on the class. The simulator computes values in the objects' `getValue`, so these are
      no-ops; the list-taking hooks keep their declared form for the GET-with-list path.
    - `handleMethodRequest` calls `server.notifyConnected(...)` for the association's
      reply-to-HLS-authentication method, which the class does not define.
    - `getRequestNextDataBlock` calls `server.getTransaction()`, an accessor the class lacks
      (the attribute is `transaction`).
    """

    def notifyRead(self, *_args: Any) -> None:
        return None

    def onPreRead(self, *_args: Any) -> None:
        return None

    def onPostRead(self, *_args: Any) -> None:
        return None

    def notifyConnected(self, connection_info: Any) -> None:
        self.onConnected(connection_info)

    def getTransaction(self) -> Any:
        return self.transaction


def fill_association_object_list(association: Any, objects: list[Any]) -> None:
    """List the server's objects in the association's `object_list` before `initialize()`.

    `GXDLMSServer.initialize` fills an empty object list with `ln.objectList.append(self.items)`,
    appending the whole collection as one item, which `GXDLMSObjectCollection.append` rejects
    with TypeError. An object list that is already filled is left alone.
    """
    for obj in objects:
        association.objectList.append(obj)


def _iterate_as_one_item_list(self: ValueEventArgs) -> Any:
    return iter([self])


# `GXDLMSLNCommandHandler.handleMethodRequest` calls `server.onPreAction(list(e))` and
# `server.onPostAction(list(e))` on a single `ValueEventArgs`, which is not iterable: every ACTION
# (e.g. disconnect control's remote_disconnect) failed with TypeError and answered
# hardware-fault. Iterating an event as the one-item list the hooks expect makes `list(e)` == [e].
# This patches the library class (the call site builds the instance), idempotently, on import.
if not hasattr(ValueEventArgs, "__iter__"):
    ValueEventArgs.__iter__ = _iterate_as_one_item_list
