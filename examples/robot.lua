-- A terminal script saved in the Windows code page cp1251, as QUIK users save theirs (this
-- file's bytes are cp1251): run it with
--   lomq run --encoding cp1251 examples/robot.lua
-- and call it: lomq call greet Мир   (names and strings cross the wire as UTF-8)
require("LuaOverMQ")

local isRunning = true
local greeting = "Здравствуй, "

function greet(name) return greeting .. tostring(name) end

function OnStop()
    isRunning = false
end

function main()
    local rpc = LuaOverMQ.bind("tcp://127.0.0.1:8004", LuaOverMQ.REP)
    message("robot.lua: serving on tcp://127.0.0.1:8004", 1)
    while isRunning do
        if rpc:process() ~= 0 then message("LuaOverMQ error " .. rpc:errno(), 3) end
    end
end
