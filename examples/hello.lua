-- The example from the original LuaOverMQ README, runnable as is:
--   deno task start            (or: lomq examples/hello.lua)
-- then call it from Python, TypeScript or the shell:
--   lomq call add 1 2
require("LuaOverMQ")

local STOCKMQ_ZMQ_REP = 4
local STOCKMQ_ZMQ_PUB = 1

local isRunning = true

function add(a, b)
    return a + b
end

function hello(name)
    return "Hello, " .. tostring(name or "world") .. "!"
end

function OnStop()
    isRunning = false
end

function main()
    rpc = LuaOverMQ.bind("tcp://127.0.0.1:8004", STOCKMQ_ZMQ_REP)
    pub = LuaOverMQ.bind("tcp://127.0.0.1:8005", STOCKMQ_ZMQ_PUB)
    message("hello.lua: serving RPC on tcp://127.0.0.1:8004, publishing on tcp://127.0.0.1:8005")

    -- Publish a message
    if pub:send("topic", "Hello World!") ~= 0 then
        print("LuaOverMQ Error: "..tostring(rpc:errno()))
    end

    -- RPC Server loop
    while isRunning do
        if rpc:process() ~= 0 then
            print("LuaOverMQ Error: "..tostring(rpc:errno()))
        end
    end
end
