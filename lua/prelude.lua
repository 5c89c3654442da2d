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
  encoding = natives.encoding,
  version = natives.version(),
}

local forms = natives.forms

--- Marks `t` to be sent as a msgpack array whatever its keys: of `n` elements (nils
--- included) when `n` is given, else of #t.
function M.array(t, n)
  if n == nil then
    forms[t] = natives.FORM_ARRAY
  else
    local length = math.tointeger(n)
    if length == nil or length < 0 then
      error("LuaOverMQ.array(t, n): n must be a non-negative integer, got " .. tostring(n), 2)
    end
    forms[t] = length
  end
  return t
end

--- Wraps the string `s` to be sent as msgpack bin: bytes, never transcoded (with a code
--- page every plain string is sent as text).
function M.bin(s)
  if type(s) ~= "string" then
    error("LuaOverMQ.bin(s): s must be a string, got " .. type(s), 2)
  end
  local t = { s }
  forms[t] = natives.FORM_BIN
  return t
end

--- Marks `t` to be sent as a msgpack map, even when it looks like an array.
function M.map(t)
  forms[t] = natives.FORM_MAP
  return t
end

local methods = natives.socket_methods
local recv_frames, request, decode = natives.recv_frames, natives.request, natives.decode
local to_local = natives.to_local

--- Receives one message. With LuaOverMQ framing (topic, msgpack value) it returns
--- the topic and the decoded value; otherwise the raw frames. On timeout: nil, errno.
function methods:recv(timeout_ms)
  local r = table.pack(recv_frames(self, timeout_ms))
  if not r[1] then return nil, r[2] end
  if r.n == 3 then
    local value, err = decode(r[3])
    if err == nil then return to_local(r[2]), value end
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

-- The module's later name, StockMQ: stockmq.rpc(uri) is a bound REP socket and
-- stockmq.pub(uri) a bound PUB socket. Both names are the same module.
function M.rpc(uri, options) return M.bind(uri, M.REP, options) end
function M.pub(uri, options) return M.bind(uri, M.PUB, options) end

-- The terminal's small helpers, so that a script written for the terminal runs outside it.
function isConnected() return 1 end

-- The terminal's own functions (quotes, orders, tables) do not exist outside it: calling
-- one says so by name, instead of "attempt to call a nil value". Looking one up without
-- calling it still gives a function, so that `if getParamEx then` tells nothing apart;
-- a script may define any of these names itself.
local terminal_only = {}
for name in ([[
  getItem getNumberOf SearchItems getOrderByNumber getTradeByNumber getClassesList getClassInfo
  getClassSecurities getSecurityInfo getParamEx getParamEx2 getQuoteLevel2 getMoney getMoneyEx
  getDepo getDepoEx getFuturesLimit getFuturesHolding getFuturesClientLimits getPortfolioInfo
  getPortfolioInfoEx getBuySellInfo getBuySellInfoEx getTradeDate getInfoParam getLinesCount
  getNumCandles getCandlesByIndex CreateDataSource sendTransaction CalcBuySell getSecurityInfoEx
  ParamRequest CancelParamRequest Subscribe_Level_II_Quotes Unsubscribe_Level_II_Quotes
  IsSubscribed_Level_II_Quotes getLabels AddLabel DelLabel DelAllLabels GetLabelParams
  SetLabelParams AllocTable AddColumn CreateWindow InsertRow DeleteRow SetCell GetCell Clear
  DestroyTable IsWindowClosed SetWindowCaption GetWindowCaption SetWindowPos GetWindowRect
  GetTableSize Highlight SetColor SetSelectedRow SetTableNotificationCallback RGB
  getDepoLimits getMoneyLimits
]]):gmatch("%S+") do terminal_only[name] = true end
local stubs = {}
setmetatable(_G, { __index = function(_, name)
  if not terminal_only[name] then return nil end
  local stub = stubs[name]
  if stub == nil then
    stub = function()
      error(name .. "() is a function of the QUIK terminal, which lomq does not provide: " ..
        "this script runs outside the terminal", 2)
    end
    stubs[name] = stub
  end
  return stub
end })

sleep = natives.sleep
package.loaded.LuaOverMQ = M
package.loaded.stockmq = M
LuaOverMQ = M
stockmq = M
