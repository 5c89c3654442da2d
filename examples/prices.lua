-- prices.lua: a script that only defines functions, for `lomq serve`.
local prices = { EURUSD = 1.0842, GBPUSD = 1.2711 }

function add(a, b) return a + b end
function echo(...) return ... end
function biggest() return math.maxinteger end
function bytes() return "\0\255" end

function price(symbol)
  local p = prices[symbol]
  if p == nil then error("unknown symbol " .. tostring(symbol), 0) end
  return p
end

-- publish() exists because lomq serve was given --pub.
function set_price(symbol, value)
  prices[symbol] = value
  publish("price." .. symbol, value)
  return true
end
