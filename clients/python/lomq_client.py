"""Python client for lomq and LuaOverMQ servers (pyzmq + msgpack).

The API of the original LuaOverMQ README's ``RPCClient``, plus:

* recovery after a timeout: the REQ socket, which would otherwise refuse every
  later call ("Operation cannot be accomplished in current state"), is closed and
  reopened, so the next call works and a late reply can never be taken for the
  answer to another call;
* ``Subscriber``, for what a script publishes with ``pub:send(topic, value)``.

Example::

    from lomq_client import RPCClient, Subscriber

    with RPCClient("tcp://127.0.0.1:8004", timeout=1000) as rpc:
        print(rpc.call("add", 1, 2))          # 3

    with Subscriber("tcp://127.0.0.1:8005", ["quotes."]) as sub:
        for topic, value in sub:
            print(topic, value)
"""
from typing import Any, Iterable, Iterator, Optional, Tuple, Union

import msgpack
import zmq

__all__ = [
    "RPCClient",
    "RPCRuntimeError",
    "RPCTimeoutError",
    "Subscriber",
    "DEFAULT_RPC_URI",
    "DEFAULT_PUB_URI",
]

DEFAULT_RPC_URI = "tcp://127.0.0.1:8004"
DEFAULT_PUB_URI = "tcp://127.0.0.1:8005"


class RPCRuntimeError(Exception):
    """The server answered ERROR; ``args[0]`` is its error value (usually a message)."""


class RPCTimeoutError(Exception):
    """No reply came in time. The client stays usable: the next call works."""


def _unpack(payload: bytes) -> Any:
    # Lua tables often have integer keys; msgpack refuses non-str keys by default.
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


class _SocketOwner:
    """One socket on a context that is ours unless the caller passed one in."""

    zmq_skt: Optional[zmq.Socket]

    def __init__(self, uri: str, context: Optional[zmq.Context]):
        self.uri = uri
        self._own_context = context is None
        self.zmq_ctx = context if context is not None else zmq.Context()
        self.zmq_skt = None

    def __enter__(self):
        return self

    def __exit__(self, *args: Any, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the socket (and the context, unless one was passed in)."""
        if self.zmq_skt is not None:
            self.zmq_skt.close()
            self.zmq_skt = None
        if self._own_context:
            self.zmq_ctx.term()
            self._own_context = False


class RPCClient(_SocketOwner):
    """Calls functions of a lomq (or LuaOverMQ) server over a REQ socket.

    ``timeout`` is in milliseconds and applies to each call unless the call gives
    its own. Calls are sequential: one request, one reply.
    """

    RPC_OK = "OK"

    def __init__(self, uri: str = DEFAULT_RPC_URI, timeout: int = 100,
                 context: Optional[zmq.Context] = None):
        super().__init__(uri, context)
        self.timeout = timeout
        self._open()

    def _open(self) -> None:
        socket = self.zmq_ctx.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(self.uri)
        self.zmq_skt = socket

    def call(self, method: str, *args: Any, timeout: Optional[int] = None) -> Any:
        """Calls ``method(*args)`` and returns its result.

        Raises RPCRuntimeError when the server answers ERROR, RPCTimeoutError when
        no reply comes within ``timeout`` ms (default: the client's).
        """
        if self.zmq_skt is None:
            raise RuntimeError("the client is closed")
        wait = self.timeout if timeout is None else timeout
        self.zmq_skt.send(msgpack.packb([method, *args], use_bin_type=True))
        if not self.zmq_skt.poll(wait) & zmq.POLLIN:
            # A REQ socket that sent and did not receive refuses to send again; its
            # reply, if it ever comes, must not be read as the next call's.
            self.zmq_skt.close()
            self._open()
            raise RPCTimeoutError(
                f"no reply to {method!r} from {self.uri} within {wait} ms")
        frames = self.zmq_skt.recv_multipart()
        if len(frames) != 2:
            raise RPCRuntimeError(f"malformed reply: {len(frames)} frames, expected 2")
        status = frames[0].decode("utf-8", "replace")
        result = _unpack(frames[1])
        if status == self.RPC_OK:
            return result
        raise RPCRuntimeError(result)


Topic = Union[str, bytes]


class Subscriber(_SocketOwner):
    """Receives ``(topic, value)`` pairs from a LuaOverMQ publisher.

    ``topics`` are prefixes; none subscribes to everything. The topic comes back
    as ``str`` (``bytes`` when it is not UTF-8). A message that is not
    ``topic, msgpack(value)`` comes back as ``(topic, [raw frames...])``.
    Iterating waits for ever; ``recv(timeout)`` returns None on timeout.
    """

    def __init__(self, uri: str = DEFAULT_PUB_URI, topics: Iterable[Topic] = (),
                 context: Optional[zmq.Context] = None):
        super().__init__(uri, context)
        self.zmq_skt = self.zmq_ctx.socket(zmq.SUB)
        self.zmq_skt.setsockopt(zmq.LINGER, 0)
        prefixes = list(topics) or [b""]
        for prefix in prefixes:
            self.subscribe(prefix)
        self.zmq_skt.connect(uri)

    def subscribe(self, topic: Topic) -> None:
        """Adds a topic prefix."""
        self._socket().setsockopt(zmq.SUBSCRIBE, _topic_bytes(topic))

    def unsubscribe(self, topic: Topic) -> None:
        """Removes a topic prefix added before."""
        self._socket().setsockopt(zmq.UNSUBSCRIBE, _topic_bytes(topic))

    def recv(self, timeout: Optional[int] = None) -> Optional[Tuple[Topic, Any]]:
        """The next ``(topic, value)``, or None after ``timeout`` ms (None: wait for ever)."""
        socket = self._socket()
        if timeout is not None and not socket.poll(timeout) & zmq.POLLIN:
            return None
        frames = socket.recv_multipart()
        try:
            topic: Topic = frames[0].decode("utf-8")
        except UnicodeDecodeError:
            topic = frames[0]
        if len(frames) == 2:
            try:
                return topic, _unpack(frames[1])
            except (ValueError, msgpack.UnpackException):
                pass
        return topic, frames[1:]

    def __iter__(self) -> Iterator[Tuple[Topic, Any]]:
        while True:
            message = self.recv()
            if message is not None:
                yield message

    def _socket(self) -> zmq.Socket:
        if self.zmq_skt is None:
            raise RuntimeError("the subscriber is closed")
        return self.zmq_skt


def _topic_bytes(topic: Topic) -> bytes:
    return topic.encode("utf-8") if isinstance(topic, str) else topic


if __name__ == "__main__":
    with RPCClient() as rpc:
        print(rpc.call("your_function", "arg1", 2, True))
