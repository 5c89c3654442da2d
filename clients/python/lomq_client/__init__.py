"""Python client for lomq and LuaOverMQ servers (pyzmq + msgpack).

The API of the original LuaOverMQ README's ``RPCClient``, plus:

* recovery after a timeout: the REQ socket, which would otherwise refuse every
  later call ("Operation cannot be accomplished in current state"), is closed and
  reopened, so the next call works and a late reply can never be taken for the
  answer to another call;
* ``Subscriber``, for what a script publishes with ``pub:send(topic, value)``;
* ``AsyncRPCClient`` and ``AsyncSubscriber`` on asyncio (``zmq.asyncio``): many
  calls in flight over one connection, each matched to its reply by a call id;
* ``functions()``, the functions a lomq server lets clients call, with their parameters;
* CURVE encryption: ``server_key=`` (the server's public key), optionally with this
  client's ``public_key=``/``secret_key=``.

Example::

    from lomq_client import RPCClient, Subscriber

    with RPCClient("tcp://127.0.0.1:8004", timeout=1000) as rpc:
        print(rpc.call("add", 1, 2))          # 3

    with Subscriber("tcp://127.0.0.1:8005", ["quotes."]) as sub:
        for topic, value in sub:
            print(topic, value)
"""
from ._core import (
    DEFAULT_PUB_URI,
    DEFAULT_RPC_URI,
    FUNCTIONS_METHOD,
    Curve,
    IntrospectionReplyError,
    RPCClosedError,
    RPCRuntimeError,
    RPCTimeoutError,
)
from ._sync import RPCClient, Subscriber
from .aio import AsyncRPCClient, AsyncSubscriber

__all__ = [
    "AsyncRPCClient",
    "AsyncSubscriber",
    "Curve",
    "DEFAULT_PUB_URI",
    "DEFAULT_RPC_URI",
    "FUNCTIONS_METHOD",
    "IntrospectionReplyError",
    "RPCClient",
    "RPCClosedError",
    "RPCRuntimeError",
    "RPCTimeoutError",
    "Subscriber",
]
