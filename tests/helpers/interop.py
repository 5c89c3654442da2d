"""What the tests' pyzmq snippets share (importable with PYTHONPATH=tests/helpers, as runPython
and spawnPython set it): a REQ socket that cannot hang the test's exit, a raw call bounded in
time, and the original client's results written so that tests can compare them as text."""
import msgpack
import zmq
from rpc_client import RPCRuntimeError


def req_socket(ctx, uri, timeout_ms=None):
    """A REQ socket connected to uri that drops what it holds at exit; timeout_ms bounds a recv."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    if timeout_ms is not None:
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.connect(uri)
    return sock


def request(sock, *call, timeout_ms=10000):
    """Sends msgpack [method, args...]; the reply's frames, or exit with a message if none comes."""
    sock.send(msgpack.packb(call))
    if sock.poll(timeout_ms) == 0:
        raise SystemExit("no reply to %r" % (call,))
    return sock.recv_multipart()


def decoded(frames):
    """A two-frame reply as [status, value]."""
    status, payload = frames
    return [status.decode(), msgpack.unpackb(payload, raw=False)]


def described(rpc, *call):
    """repr() of what the original client's rpc.call returns, or "ERROR " + repr(message)."""
    try:
        return repr(rpc.call(*call))
    except RPCRuntimeError as error:
        return "ERROR " + repr(error.args[0])
