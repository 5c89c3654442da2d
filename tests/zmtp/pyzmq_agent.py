"""A libzmq peer driven over stdin/stdout, for lomq's interop tests.

Each stdin line is a JSON command; each produces exactly one JSON line on stdout:
{"ok": true, ...} or {"ok": false, "error": "..."}. Frames travel as base64 strings.
The agent exits on {"op": "exit"} or at end of input, closing every socket with linger 0.
"""

import base64
import json
import sys
import time

import zmq
import zmq.utils.z85

ctx = zmq.Context.instance()
sockets = {}
authenticators = []

OPTS = {
    "LINGER": zmq.LINGER,
    "SNDHWM": zmq.SNDHWM,
    "RCVHWM": zmq.RCVHWM,
    "HEARTBEAT_IVL": zmq.HEARTBEAT_IVL,
    "HEARTBEAT_TIMEOUT": zmq.HEARTBEAT_TIMEOUT,
    "HEARTBEAT_TTL": zmq.HEARTBEAT_TTL,
    "RECONNECT_IVL": zmq.RECONNECT_IVL,
    "ROUTER_MANDATORY": zmq.ROUTER_MANDATORY,
    "IMMEDIATE": zmq.IMMEDIATE,
    "IPV6": zmq.IPV6,
    "MAXMSGSIZE": zmq.MAXMSGSIZE,
    "CURVE_SERVER": zmq.CURVE_SERVER,
    "CURVE_SECRETKEY": zmq.CURVE_SECRETKEY,
    "CURVE_PUBLICKEY": zmq.CURVE_PUBLICKEY,
    "CURVE_SERVERKEY": zmq.CURVE_SERVERKEY,
    "PLAIN_SERVER": zmq.PLAIN_SERVER,
    "PLAIN_USERNAME": zmq.PLAIN_USERNAME,
    "PLAIN_PASSWORD": zmq.PLAIN_PASSWORD,
}


def b64(frame):
    return base64.b64encode(frame).decode("ascii")


def unb64(text):
    return base64.b64decode(text)


def handle(cmd):
    op = cmd["op"]
    if op == "version":
        return {"zmq": zmq.zmq_version()}
    if op == "keypair":
        public, secret = zmq.curve_keypair()
        return {"public": public.decode(), "secret": secret.decode()}
    if op == "curve_public":
        return {"public": zmq.curve_public(cmd["secret"].encode()).decode()}
    if op == "z85_encode":
        return {"text": zmq.utils.z85.encode(unb64(cmd["data"])).decode()}
    if op == "z85_decode":
        return {"data": b64(zmq.utils.z85.decode(cmd["text"].encode()))}
    if op == "auth_plain":
        # libzmq's PLAIN server needs a ZAP handler: pyzmq's, with these user: password pairs.
        from zmq.auth.thread import ThreadAuthenticator

        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_plain(domain="*", passwords=cmd["passwords"])
        authenticators.append(auth)
        return {}
    if op == "socket":
        sock = ctx.socket(getattr(zmq, cmd["type"]))
        sock.setsockopt(zmq.LINGER, 0)
        for name, value in cmd.get("opts", {}).items():
            sock.setsockopt(OPTS[name], value.encode() if isinstance(value, str) else value)
        if "identity" in cmd:
            sock.setsockopt(zmq.ROUTING_ID, unb64(cmd["identity"]))
        sockets[cmd["id"]] = sock
        return {}
    sock = sockets[cmd["id"]]
    if op == "bind":
        sock.bind(cmd["endpoint"])
        return {"endpoint": sock.getsockopt(zmq.LAST_ENDPOINT).decode()}
    if op == "connect":
        sock.connect(cmd["endpoint"])
        return {}
    if op == "unbind":
        sock.unbind(cmd["endpoint"])
        return {}
    if op == "send":
        frames = [unb64(f) for f in cmd["frames"]]
        timeout = cmd.get("timeout", 5000)
        sock.setsockopt(zmq.SNDTIMEO, timeout)
        try:
            sock.send_multipart(frames)
        except zmq.Again:
            return {"ok": False, "error": "EAGAIN"}
        except zmq.ZMQError as err:
            return {"ok": False, "error": zmq.strerror(err.errno), "errno": err.errno}
        return {}
    if op == "recv":
        timeout = cmd.get("timeout", 5000)
        if sock.poll(timeout, zmq.POLLIN) == 0:
            return {"ok": False, "error": "timeout"}
        return {"frames": [b64(f) for f in sock.recv_multipart()]}
    if op == "drain":
        # Receive everything that arrives until `quiet` ms pass with nothing new.
        quiet = cmd.get("quiet", 200)
        got = []
        count = 0
        last = []
        while sock.poll(quiet, zmq.POLLIN):
            last = sock.recv_multipart()
            count += 1
            if not cmd.get("summary"):
                got.append([b64(f) for f in last])
        if cmd.get("summary"):
            return {"count": count, "last": [b64(f) for f in last]}
        return {"messages": got}
    if op == "subscribe":
        sock.setsockopt(zmq.SUBSCRIBE, unb64(cmd["prefix"]))
        return {}
    if op == "unsubscribe":
        sock.setsockopt(zmq.UNSUBSCRIBE, unb64(cmd["prefix"]))
        return {}
    if op == "requests":
        # Lockstep REQ client: send each body, expect it echoed back with a prefix.
        count = cmd["count"]
        tag = cmd.get("tag", "")
        start = time.time()
        for i in range(count):
            body = ("%s-%d" % (tag, i)).encode()
            sock.send(body)
            if sock.poll(cmd.get("timeout", 5000), zmq.POLLIN) == 0:
                return {"ok": False, "error": "timeout at request %d" % i}
            reply = sock.recv_multipart()
            if reply != [b"re:" + body]:
                return {"ok": False, "error": "bad reply %r to %r" % (reply, body)}
        return {"seconds": time.time() - start}
    if op == "close":
        sock.close(0)
        del sockets[cmd["id"]]
        return {}
    raise ValueError("unknown op " + op)


def main():
    sys.stdout.write(json.dumps({"ok": True, "ready": True, "zmq": zmq.zmq_version()}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd["op"] == "exit":
            break
        try:
            result = handle(cmd)
            if "ok" not in result:
                result["ok"] = True
        except Exception as err:  # report, keep serving
            result = {"ok": False, "error": "%s: %s" % (type(err).__name__, err)}
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    for sock in sockets.values():
        sock.close(0)
    for auth in authenticators:
        auth.stop()
    ctx.term()


if __name__ == "__main__":
    main()
