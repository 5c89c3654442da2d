-- The Lua side of the LuaOverMQ module. The host passes a table of native functions;
-- this file shapes them into the API scripts use. It runs before the script; no function
-- it defines can be called by clients, under any name.
local natives = ...

local M = {
  PUB = 1, SUB = 2, REQ = 3, REP = 4, DEALER = 5, ROUTER = 6, PULL = 7, PUSH = 8,
  bind = natives.bind,
  connect = natives.connect,
  time = natives.time,
  encode = natives.encode,
  decode = natives.decode,
  expose = natives.expose,
  version = natives.version(),
}

local forms = natives.forms

--- Marks `t` to be sent as a msgpack array (1..#t) whatever its keys.
function M.array(t)
  forms[t] = natives.FORM_ARRAY
  return t
end

--- Marks `t` to be sent as a msgpack map, even when it looks like an array.
function M.map(t)
  forms[t] = natives.FORM_MAP
  return t
end

local methods = natives.socket_methods
local recv_frames, request, decode = natives.recv_frames, natives.request, natives.decode

--- Receives one message. With LuaOverMQ framing (topic, msgpack value) it returns
--- the topic and the decoded value; otherwise the raw frames. On timeout: nil, errno.
function methods:recv(timeout_ms)
  local r = table.pack(recv_frames(self, timeout_ms))
  if not r[1] then return nil, r[2] end
  if r.n == 3 then
    local value, err = decode(r[3])
    if err == nil then return r[2], value end
  end
  return table.unpack(r, 2, r.n)
end

--- Calls `method` on a LuaOverMQ server over this REQ or DEALER socket.
function methods:call(method, ...)
  local ok, status, payload = request(self, method, ...)
  if not ok then error(payload, 2) end
  local value, err = decode(payload)
  if err ~= nil then error("call '" .. tostring(method) .. "': bad reply: " .. err, 2) end
  if status == "OK" then return value end
  error(value, 2)
end

-- A script's own modules: require looks beside the script and in the current folder.
table.insert(package.searchers, 2, natives.searcher)

sleep = natives.sleep
package.loaded.LuaOverMQ = M
LuaOverMQ = M
