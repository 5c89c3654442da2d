-- The benchmark's lomq server: the same add(a, b) that the yardstick peers
-- (csrv, pysrv.py) answer, so that cload measures all three on one request.
-- usage: lomq bench/add.lua [URI]   (bench/run.ts passes a free loopback port)
require("LuaOverMQ")

-- Shared by main's loop and OnStop: the runtime calls OnStop on SIGTERM, and
-- process() returns at least every 250 ms, so the loop sees it soon after.
local running = true

function add(a, b)
  return a + b
end

function OnStop()
  running = false
end

function main()
  local rpc = LuaOverMQ.bind(arg[1] or "tcp://127.0.0.1:8004", LuaOverMQ.REP)
  while running do
    rpc:process(250)
  end
end
