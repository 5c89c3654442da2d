-- A worker that scales out behind a standard ZeroMQ broker (see examples/broker.py):
--   python3 examples/broker.py                       # clients -> :8004, workers -> :8014
--   lomq examples/worker.lua tcp://127.0.0.1:8014 w1
--   lomq examples/worker.lua tcp://127.0.0.1:8014 w2
--   lomq call --uri tcp://127.0.0.1:8004 whoami     # answered by w1 or w2
require("LuaOverMQ")

local running = true

function whoami() return arg[2] or "worker" end
function add(a, b) return a + b end
function OnStop() running = false end

function main()
  -- A REP socket that connects (instead of binding) to the broker's DEALER side; it
  -- reconnects by itself if the broker restarts.
  local rpc = LuaOverMQ.connect(arg[1] or "tcp://127.0.0.1:8014", LuaOverMQ.REP)
  while running do rpc:process() end
end
