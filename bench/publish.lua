-- The benchmark's lomq publisher: a loop of pub:send("t", i) as a user would write it,
-- against the yardstick's cpub, both counted by csub (which reads i as a sequence number).
-- usage: lomq bench/publish.lua URI SECONDS [SIZE]
--   SIZE > 0 sends {i, bin(SIZE)} instead of i, as cpub does with its SIZE.
require("LuaOverMQ")

local running = true

function OnStop()
  running = false
end

function main()
  local pub = LuaOverMQ.bind(arg[1], LuaOverMQ.PUB)
  local seconds = tonumber(arg[2] or "5")
  local size = tonumber(arg[3] or "0")
  -- As cpub does: a second for the subscriber to join.
  sleep(1000)
  local blob = size > 0 and LuaOverMQ.bin(string.rep("x", size)) or nil
  local deadline = LuaOverMQ.time() + seconds
  local i = 0
  while running and LuaOverMQ.time() < deadline do
    -- The clock is read once per 256 messages, as cpub does.
    for _ = 1, 256 do
      if blob then pub:send("t", { i, blob }) else pub:send("t", i) end
      i = i + 1
    end
  end
  pub:close()
end
