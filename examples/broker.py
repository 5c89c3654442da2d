"""A standard ZeroMQ queue device: clients connect to :8004, lomq workers to :8014.

Nothing here is lomq-specific: any ROUTER/DEALER proxy (libzmq's zmq_proxy, a
pyzmq device, a Go or Java one) spreads requests across the workers connected to it.
"""
import zmq

ctx = zmq.Context()
frontend = ctx.socket(zmq.ROUTER)
frontend.bind("tcp://127.0.0.1:8004")
backend = ctx.socket(zmq.DEALER)
backend.bind("tcp://127.0.0.1:8014")
print("broker: clients -> tcp://*:8004, workers -> tcp://*:8014")
zmq.proxy(frontend, backend)
