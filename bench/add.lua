-- The benchmark's lomq server: the same add(a, b) and echo(x) that the yardstick peers
-- (csrv, pysrv.py) answer, so that cload measures them all on one request.
-- usage: lomq bench/add.lua [URI [REP|ROUTER [option=value ...]]]
--   (bench/run.ts passes a free loopback port; ROUTER serves pipelining clients, and the
--   options go to bind, e.g. heartbeat_ivl_ms=1000 or curve_server=true)
require("LuaOverMQ")

-- Shared by main's loop and OnStop: the runtime calls OnStop on SIGTERM and makes a
-- waiting process() return at once, so the loop ends with no timeout to poll on (an idle
-- server then wakes only for its clients).
local running = true

function add(a, b)
  return a + b
end

-- cload's payload is not valid UTF-8, so it goes back as msgpack bin, as it came.
function echo(x)
  return x
end

function OnStop()
  running = false
end

local function options()
  local o = {}
  for i = 3, #arg do
    local name, value = arg[i]:match("^([%w_]+)=(.*)$")
    if name == nil then error("bench/add.lua: expected option=value, got " .. arg[i]) end
    if value == "true" then
      o[name] = true
    elseif value == "false" then
      o[name] = false
    else
      o[name] = tonumber(value) or value
    end
  end
  return o
end

function main()
  local kind = LuaOverMQ[arg[2] or "REP"]
  local rpc = LuaOverMQ.bind(arg[1] or "tcp://127.0.0.1:8004", kind, options())
  while running do
    rpc:process()
  end
end
