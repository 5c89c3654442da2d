-- Functions for `lomq serve --encoding cp1251 examples/words.lua`, saved in cp1251 (this
-- file's bytes are cp1251): clients send and receive UTF-8, the script sees cp1251.
local words = { hello = "привет", world = "мир" }

function word(key) return words[key] end
function length(text) return #text end   -- bytes in cp1251: one per Cyrillic letter
