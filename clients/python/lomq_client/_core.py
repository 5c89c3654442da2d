"""What the sync and the asyncio clients share: errors, the wire format, CURVE keys."""
from typing import Any, List, Optional, Sequence, Tuple, Union

import msgpack
import zmq
from zmq.utils import z85

DEFAULT_RPC_URI = "tcp://127.0.0.1:8004"
DEFAULT_PUB_URI = "tcp://127.0.0.1:8005"

#: The reserved method a lomq server answers with the functions it lets clients call.
FUNCTIONS_METHOD = "lomq.functions"
# More functions than any script defines: a server listing more is lying (or looping).
_MAX_LISTED_FUNCTIONS = 1_000_000

RPC_OK = "OK"

Topic = Union[str, bytes]
Key = Union[str, bytes]


class RPCRuntimeError(Exception):
    """The server answered ERROR; ``args[0]`` is its error value (usually a message)."""


class RPCTimeoutError(Exception):
    """No reply came in time. The client stays usable: the next call works."""


class RPCClosedError(RuntimeError):
    """The client was closed before (or while) the call was made."""


class IntrospectionReplyError(RuntimeError):
    """The server answered ``lomq.functions`` with something that is not a function list."""


def take_functions_page(page: Any, listed: List[dict]) -> Optional[Tuple[Any]]:
    """Adds one reply to ``lomq.functions`` to ``listed``; the arguments of the request for
    the next page, or None when this was the last.

    A page is ``{"functions": [{"name", "params", "vararg"}...], "more": bool}``, sorted by
    name; a name that is not UTF-8 is ``bytes`` and goes back as such.
    """
    if not isinstance(page, dict) or not isinstance(page.get("functions"), list) \
            or not isinstance(page.get("more"), bool):
        raise IntrospectionReplyError(f"lomq.functions answered {page!r}, not a function list")
    last = listed[-1]["name"] if listed else None
    for entry in page["functions"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, (str, bytes)):
            raise IntrospectionReplyError(f"lomq.functions listed {entry!r}, not a function")
        key = name.encode("utf-8") if isinstance(name, str) else name
        if last is not None:
            last_key = last.encode("utf-8") if isinstance(last, str) else last
            if key <= last_key:
                raise IntrospectionReplyError("lomq.functions listed names out of order")
        last = name
        listed.append({"name": name, "params": list(entry.get("params") or []),
                       "vararg": bool(entry.get("vararg"))})
    if len(listed) > _MAX_LISTED_FUNCTIONS:
        raise IntrospectionReplyError(
            f"lomq.functions listed more than {_MAX_LISTED_FUNCTIONS} functions")
    if not page["more"]:
        return None
    if last is None:
        raise IntrospectionReplyError("lomq.functions said more follow after an empty page")
    return (last,)


def unpack(payload: bytes) -> Any:
    # Lua tables often have integer keys; msgpack refuses non-str keys by default.
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def pack_request(method: str, args: Sequence[Any]) -> bytes:
    """The body of a request: msgpack ``[method, args...]``."""
    return msgpack.packb([method, *args], use_bin_type=True)


def reply_value(status: bytes, payload: bytes) -> Any:
    """The result of a reply ``[status, payload]``; raises RPCRuntimeError for ERROR."""
    result = unpack(payload)
    if status.decode("utf-8", "replace") == RPC_OK:
        return result
    raise RPCRuntimeError(result)


def check_reply_frames(frames: List[bytes]) -> Tuple[bytes, bytes]:
    if len(frames) != 2:
        raise RPCRuntimeError(f"malformed reply: {len(frames)} frames, expected 2")
    return frames[0], frames[1]


def publication(frames: List[bytes]) -> Tuple[Topic, Any]:
    """``(topic, value)`` of a message ``topic, msgpack(value)``; else ``(topic, frames[1:])``.

    The topic is ``str``, or ``bytes`` when it is not UTF-8.
    """
    try:
        topic: Topic = frames[0].decode("utf-8")
    except UnicodeDecodeError:
        topic = frames[0]
    if len(frames) == 2:
        try:
            return topic, unpack(frames[1])
        except (ValueError, msgpack.UnpackException):
            pass
    return topic, frames[1:]


def topic_bytes(topic: Topic) -> bytes:
    return topic.encode("utf-8") if isinstance(topic, str) else topic


class SocketOwner:
    """Owns ``zmq_skt`` and, unless the caller passed one in, its context ``zmq_ctx``."""

    zmq_skt: Any
    zmq_ctx: Any
    _own_context: bool

    def _release(self) -> None:
        """Closes the socket, then the context if it is ours (idempotent)."""
        if self.zmq_skt is not None:
            self.zmq_skt.close()
            self.zmq_skt = None
        if self._own_context:
            self.zmq_ctx.term()
            self._own_context = False


class Curve:
    """CURVE keys of a client: the server's public key and this client's pair.

    Keys are Z85 text (40 characters, as ``zmq.curve_keypair()`` makes them) or the 32 raw
    bytes. Without ``public_key``/``secret_key`` the client uses a fresh pair of its own,
    which encrypts the connection but does not say who the client is.
    """

    def __init__(self, server_key: Key, public_key: Optional[Key], secret_key: Optional[Key]):
        if not zmq.has("curve"):
            raise RuntimeError(
                "this pyzmq's libzmq has no CURVE support; install one built with libsodium "
                "(Debian's python3-zmq has it)")
        if (public_key is None) != (secret_key is None):
            raise ValueError("give both public_key and secret_key, or neither")
        self.server_key = _z85(server_key, "server_key")
        if public_key is None or secret_key is None:
            self.public_key, self.secret_key = zmq.curve_keypair()
        else:
            self.public_key = _z85(public_key, "public_key")
            self.secret_key = _z85(secret_key, "secret_key")

    def apply(self, socket: zmq.Socket) -> None:
        """Makes ``socket`` a CURVE client of the server; call before connect()."""
        socket.curve_serverkey = self.server_key
        socket.curve_publickey = self.public_key
        socket.curve_secretkey = self.secret_key


def curve_from(server_key: Optional[Key], public_key: Optional[Key],
               secret_key: Optional[Key]) -> Optional[Curve]:
    """The CURVE settings the client's arguments ask for; None for a plain connection."""
    if server_key is None:
        if public_key is not None or secret_key is not None:
            raise ValueError("public_key and secret_key need server_key (the server's key)")
        return None
    return Curve(server_key, public_key, secret_key)


def _z85(key: Key, name: str) -> bytes:
    raw = key.encode("ascii") if isinstance(key, str) else bytes(key)
    if len(raw) == 32:
        return z85.encode(raw)
    if len(raw) == 40:
        return raw
    raise ValueError(f"{name} must be 40 characters of Z85 or 32 bytes, got {len(raw)}")
