"""The blocking clients: ``RPCClient`` (REQ) and ``Subscriber`` (SUB)."""
from typing import Any, Iterable, Iterator, List, Optional, Tuple

import zmq

from ._core import (
    DEFAULT_PUB_URI,
    DEFAULT_RPC_URI,
    FUNCTIONS_METHOD,
    RPC_OK,
    Key,
    RPCClosedError,
    RPCTimeoutError,
    SocketOwner,
    Topic,
    check_reply_frames,
    curve_from,
    pack_request,
    publication,
    reply_value,
    take_functions_page,
    topic_bytes,
)


class _SocketOwner(SocketOwner):
    """One socket on a context that is ours unless the caller passed one in."""

    zmq_skt: Optional[zmq.Socket]

    def __init__(self, uri: str, context: Optional[zmq.Context], server_key: Optional[Key],
                 public_key: Optional[Key], secret_key: Optional[Key]):
        self.uri = uri
        self._curve = curve_from(server_key, public_key, secret_key)
        self._own_context = context is None
        self.zmq_ctx = context if context is not None else zmq.Context()
        self.zmq_skt = None

    def _socket_of(self, kind: int) -> zmq.Socket:
        socket = self.zmq_ctx.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        if self._curve is not None:
            self._curve.apply(socket)
        return socket

    def __enter__(self):
        return self

    def __exit__(self, *args: Any, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the socket (and the context, unless one was passed in)."""
        self._release()


class RPCClient(_SocketOwner):
    """Calls functions of a lomq (or LuaOverMQ) server over a REQ socket.

    ``timeout`` is in milliseconds and applies to each call unless the call gives
    its own. Calls are sequential: one request, one reply. With ``server_key`` (the
    server's CURVE public key) the connection is encrypted; see ``Curve``.
    """

    RPC_OK = RPC_OK

    def __init__(self, uri: str = DEFAULT_RPC_URI, timeout: int = 100,
                 context: Optional[zmq.Context] = None, *, server_key: Optional[Key] = None,
                 public_key: Optional[Key] = None, secret_key: Optional[Key] = None):
        super().__init__(uri, context, server_key, public_key, secret_key)
        self.timeout = timeout
        self._open()

    def _open(self) -> None:
        socket = self._socket_of(zmq.REQ)
        socket.connect(self.uri)
        self.zmq_skt = socket

    def call(self, method: str, *args: Any, timeout: Optional[int] = None) -> Any:
        """Calls ``method(*args)`` and returns its result.

        Raises RPCRuntimeError when the server answers ERROR, RPCTimeoutError when
        no reply comes within ``timeout`` ms (default: the client's).
        """
        if self.zmq_skt is None:
            raise RPCClosedError("the client is closed")
        wait = self.timeout if timeout is None else timeout
        self.zmq_skt.send(pack_request(method, args))
        if not self.zmq_skt.poll(wait) & zmq.POLLIN:
            # A REQ socket that sent and did not receive refuses to send again; its
            # reply, if it ever comes, must not be read as the next call's.
            self.zmq_skt.close()
            self._open()
            raise RPCTimeoutError(
                f"no reply to {method!r} from {self.uri} within {wait} ms")
        status, payload = check_reply_frames(self.zmq_skt.recv_multipart())
        return reply_value(status, payload)

    def functions(self, timeout: Optional[int] = None) -> List[dict]:
        """The functions the server lets clients call, sorted by name: dicts
        ``{"name", "params", "vararg"}``, read page by page from the reserved method
        ``lomq.functions``. A server without it (the original LuaOverMQ) answers with
        RPCRuntimeError; a reply that is no function list raises IntrospectionReplyError."""
        listed: List[dict] = []
        args: Optional[Tuple[Any]] = ()
        while args is not None:
            args = take_functions_page(self.call(FUNCTIONS_METHOD, *args, timeout=timeout), listed)
        return listed


class Subscriber(_SocketOwner):
    """Receives ``(topic, value)`` pairs from a LuaOverMQ publisher.

    ``topics`` are prefixes; none subscribes to everything. The topic comes back
    as ``str`` (``bytes`` when it is not UTF-8). A message that is not
    ``topic, msgpack(value)`` comes back as ``(topic, [raw frames...])``.
    Iterating waits for ever; ``recv(timeout)`` returns None on timeout.
    """

    def __init__(self, uri: str = DEFAULT_PUB_URI, topics: Iterable[Topic] = (),
                 context: Optional[zmq.Context] = None, *, server_key: Optional[Key] = None,
                 public_key: Optional[Key] = None, secret_key: Optional[Key] = None):
        super().__init__(uri, context, server_key, public_key, secret_key)
        self.zmq_skt = self._socket_of(zmq.SUB)
        prefixes: List[Topic] = list(topics) or [b""]
        for prefix in prefixes:
            self.subscribe(prefix)
        self.zmq_skt.connect(uri)

    def subscribe(self, topic: Topic) -> None:
        """Adds a topic prefix."""
        self._socket().setsockopt(zmq.SUBSCRIBE, topic_bytes(topic))

    def unsubscribe(self, topic: Topic) -> None:
        """Removes a topic prefix added before."""
        self._socket().setsockopt(zmq.UNSUBSCRIBE, topic_bytes(topic))

    def recv(self, timeout: Optional[int] = None) -> Optional[Tuple[Topic, Any]]:
        """The next ``(topic, value)``, or None after ``timeout`` ms (None: wait for ever)."""
        socket = self._socket()
        if timeout is not None and not socket.poll(timeout) & zmq.POLLIN:
            return None
        return publication(socket.recv_multipart())

    def __iter__(self) -> Iterator[Tuple[Topic, Any]]:
        while True:
            message = self.recv()
            if message is not None:
                yield message

    def _socket(self) -> zmq.Socket:
        if self.zmq_skt is None:
            raise RPCClosedError("the subscriber is closed")
        return self.zmq_skt
