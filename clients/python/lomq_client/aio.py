"""The asyncio clients on ``zmq.asyncio``: ``AsyncRPCClient`` and ``AsyncSubscriber``.

``AsyncRPCClient`` sends every call at once over one DEALER connection, as lomq's
TypeScript client does: each request carries a 4-byte call id in its envelope
(``[id, "", msgpack([method, args...])]``), which every REP server (lomq's, libzmq's, the
original LuaOverMQ's) echoes in front of its reply. Replies are matched by that id, not
by their order, so a reply that comes after its call timed out is recognised and dropped,
and a request lost on a dropped connection costs only its own call a timeout.
"""
import asyncio
from typing import Any, AsyncIterator, Dict, Iterable, List, Optional, Tuple

import zmq
import zmq.asyncio

from ._core import (
    DEFAULT_PUB_URI,
    DEFAULT_RPC_URI,
    FUNCTIONS_METHOD,
    Key,
    RPCClosedError,
    RPCTimeoutError,
    SocketOwner,
    Topic,
    curve_from,
    pack_request,
    publication,
    reply_value,
    take_functions_page,
    topic_bytes,
)

_MAX_ID = 0xFFFF_FFFF

# `timeout=` left out: the client's timeout (None already means "wait for ever").
_CLIENT_TIMEOUT: Any = object()


class _AsyncSocketOwner(SocketOwner):
    """One zmq.asyncio socket on a context that is ours unless the caller passed one in."""

    def __init__(self, uri: str, kind: int, context: Optional[zmq.asyncio.Context],
                 server_key: Optional[Key], public_key: Optional[Key],
                 secret_key: Optional[Key]):
        self.uri = uri
        curve = curve_from(server_key, public_key, secret_key)
        self._own_context = context is None
        self.zmq_ctx = context if context is not None else zmq.asyncio.Context()
        socket = self.zmq_ctx.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(socket)
        self.zmq_skt: Optional[zmq.asyncio.Socket] = socket

    async def __aenter__(self):
        return self

    async def __aexit__(self, *args: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the socket (and the context, unless one was passed in)."""
        self._release()


class AsyncRPCClient(_AsyncSocketOwner):
    """Calls functions of a lomq (or LuaOverMQ) server; calls may overlap freely.

    ``timeout`` (ms, default 5000) applies to each call unless the call gives its own;
    ``None`` waits for ever. ``server_key`` turns on CURVE as for ``RPCClient``.

    Example::

        async with AsyncRPCClient("tcp://127.0.0.1:8004") as rpc:
            print(await asyncio.gather(*(rpc.call("add", n, 10) for n in range(3))))
    """

    def __init__(self, uri: str = DEFAULT_RPC_URI, timeout: Optional[int] = 5000,
                 context: Optional[zmq.asyncio.Context] = None, *,
                 server_key: Optional[Key] = None, public_key: Optional[Key] = None,
                 secret_key: Optional[Key] = None):
        super().__init__(uri, zmq.DEALER, context, server_key, public_key, secret_key)
        self.timeout = timeout
        self._pending: Dict[int, "asyncio.Future[Tuple[bytes, bytes]]"] = {}
        self._next_id = 1
        self._receiver: Optional["asyncio.Task[None]"] = None
        assert self.zmq_skt is not None
        self.zmq_skt.connect(uri)

    @property
    def pending(self) -> int:
        """Calls sent and not yet answered, timed out or cancelled."""
        return len(self._pending)

    async def call(self, method: str, *args: Any,
                   timeout: Optional[int] = _CLIENT_TIMEOUT) -> Any:
        """Calls ``method(*args)`` and returns its result.

        Raises RPCRuntimeError when the server answers ERROR, RPCTimeoutError when no
        reply comes within ``timeout`` ms (default: the client's; None: wait for ever),
        RPCClosedError when the client is closed first.
        """
        socket = self.zmq_skt
        if socket is None:
            raise RPCClosedError("the client is closed")
        wait = self.timeout if timeout is _CLIENT_TIMEOUT else timeout
        body = pack_request(method, args)
        call_id = self._take_id()
        reply: "asyncio.Future[Tuple[bytes, bytes]]" = asyncio.get_running_loop().create_future()
        self._pending[call_id] = reply
        self._start_receiving()
        try:
            # The send counts against the timeout too: past the high-water mark it waits.
            await asyncio.wait_for(
                self._send_and_wait(socket, call_id, body, reply),
                None if wait is None else max(0, wait) / 1000)
        except asyncio.TimeoutError:
            raise RPCTimeoutError(
                f"no reply to {method!r} from {self.uri} within {wait} ms") from None
        finally:
            self._pending.pop(call_id, None)
        status, payload = reply.result()
        return reply_value(status, payload)

    async def functions(self, timeout: Optional[int] = _CLIENT_TIMEOUT) -> List[dict]:
        """The functions the server lets clients call, sorted by name: dicts
        ``{"name", "params", "vararg"}``, read page by page from the reserved method
        ``lomq.functions``. A server without it (the original LuaOverMQ) answers with
        RPCRuntimeError; a reply that is no function list raises IntrospectionReplyError."""
        listed: List[dict] = []
        args: Optional[Tuple[Any]] = ()
        while args is not None:
            page = await self.call(FUNCTIONS_METHOD, *args, timeout=timeout)
            args = take_functions_page(page, listed)
        return listed

    @staticmethod
    async def _send_and_wait(socket: zmq.asyncio.Socket, call_id: int, body: bytes,
                             reply: "asyncio.Future[Tuple[bytes, bytes]]") -> None:
        await socket.send_multipart([call_id.to_bytes(4, "big"), b"", body])
        # shield: a timeout cancels the wait, not the future the receiver may still settle.
        await asyncio.shield(reply)

    def _take_id(self) -> int:
        call_id = self._next_id
        # Wraps within 32 bits; ids of calls still pending are skipped.
        while True:
            self._next_id = 1 if self._next_id == _MAX_ID else self._next_id + 1
            if self._next_id not in self._pending:
                return call_id

    def _start_receiving(self) -> None:
        if self._receiver is None:
            self._receiver = asyncio.get_running_loop().create_task(self._receive_loop())

    async def _receive_loop(self) -> None:
        socket = self.zmq_skt
        while socket is not None and not socket.closed:
            frames: List[bytes] = await socket.recv_multipart()
            # [id, "", status, payload]; anything else is not a reply to this client.
            if len(frames) != 4 or len(frames[0]) != 4 or frames[1] != b"":
                continue
            reply = self._pending.get(int.from_bytes(frames[0], "big"))
            if reply is not None and not reply.done():
                reply.set_result((frames[2], frames[3]))
            # else: the call timed out or was cancelled; its late reply is dropped.

    async def aclose(self) -> None:
        """Closes the connection; calls still pending raise RPCClosedError."""
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(RPCClosedError("the client was closed during the call"))
        self._pending.clear()
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.cancel()
            try:
                await receiver
            except (asyncio.CancelledError, zmq.ZMQError):
                pass
        self._release()


class AsyncSubscriber(_AsyncSocketOwner):
    """Receives ``(topic, value)`` pairs from a LuaOverMQ publisher, on asyncio.

    As ``Subscriber``: ``topics`` are prefixes (none: everything); ``await recv(timeout)``
    returns None on timeout; ``async for topic, value in sub`` waits for ever.
    """

    def __init__(self, uri: str = DEFAULT_PUB_URI, topics: Iterable[Topic] = (),
                 context: Optional[zmq.asyncio.Context] = None, *,
                 server_key: Optional[Key] = None, public_key: Optional[Key] = None,
                 secret_key: Optional[Key] = None):
        super().__init__(uri, zmq.SUB, context, server_key, public_key, secret_key)
        for prefix in list(topics) or [b""]:
            self.subscribe(prefix)
        assert self.zmq_skt is not None
        self.zmq_skt.connect(uri)

    def subscribe(self, topic: Topic) -> None:
        """Adds a topic prefix."""
        self._socket().setsockopt(zmq.SUBSCRIBE, topic_bytes(topic))

    def unsubscribe(self, topic: Topic) -> None:
        """Removes a topic prefix added before."""
        self._socket().setsockopt(zmq.UNSUBSCRIBE, topic_bytes(topic))

    async def recv(self, timeout: Optional[int] = None) -> Optional[Tuple[Topic, Any]]:
        """The next ``(topic, value)``, or None after ``timeout`` ms (None: wait for ever)."""
        socket = self._socket()
        if timeout is not None and not await socket.poll(timeout) & zmq.POLLIN:
            return None
        return publication(await socket.recv_multipart())

    async def __aiter__(self) -> AsyncIterator[Tuple[Topic, Any]]:
        while True:
            message = await self.recv()
            if message is not None:
                yield message

    def _socket(self) -> zmq.asyncio.Socket:
        if self.zmq_skt is None:
            raise RPCClosedError("the subscriber is closed")
        return self.zmq_skt
