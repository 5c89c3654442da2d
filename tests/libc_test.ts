// The Lua build's C library as src/lua/libc.ts answers it: os.date, os.time and the C
// library's writes, checked against glibc (Python's time module in the "C" locale) in child
// processes with the time zone set by TZ.
import assert from "node:assert/strict";
import { ROOT } from "./helpers/lomq.ts";

/** Every conversion Lua 5.4 accepts (LUA_STRFTIMEOPTIONS for C99). */
const CONVERSIONS = [..."aAbBcCdDeFgGhHIjmMnprRStTuUVwWxXyYzZ%"].concat(
  ["Ec", "EC", "Ex", "EX", "Ey", "EY"],
  ["Od", "Oe", "OH", "OI", "Om", "OM", "OS", "Ou", "OU", "OV", "Ow", "OW", "Oy"],
);

/**
 * Instants around what calendars get wrong: the epoch, negative times, leap days, ISO weeks
 * that belong to the year before or after, daylight saving changes (US 2024-03-10 and
 * 2024-11-03), and dates far from 1970.
 */
const INSTANTS = [
  0,
  86399,
  -1,
  -31536000,
  -2208988800,
  951782400,
  951868800,
  1009843199,
  1009843200,
  1104537600,
  1230768000,
  1262304000,
  1293840000,
  1609459200,
  1700000000,
  1710054000,
  1710057600,
  1730613600,
  1730617200,
  1719835200,
  1735689599,
  4102444800,
  32503680000,
];

async function output(command: string, args: string[], env: Record<string, string>) {
  const result = await new Deno.Command(command, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(result.stdout);
  assert.ok(result.success, `${command} failed: ${new TextDecoder().decode(result.stderr)}`);
  return text;
}

/** Runs `lua` in a fresh engine in a child with `TZ`; its result is printed as JSON. */
function luaIn(timeZone: string, lua: string): Promise<unknown> {
  const code = `
    import { LuaEngine } from ${JSON.stringify(`file://${ROOT}src/lua/engine.ts`)};
    const engine = await LuaEngine.create();
    const failure = engine.load(engine.L, new TextEncoder().encode(${JSON.stringify(lua)}), "=t");
    if (failure !== undefined) throw new Error(failure);
    if (engine.pcall(engine.L, 0, 1) !== 0) throw new Error(engine.api.describe(engine.L, -1));
    console.log(engine.api.describe(engine.L, -1));`;
  return output(Deno.execPath(), ["eval", "--ext=ts", code], { TZ: timeZone }).then(JSON.parse);
}

function pythonIn(timeZone: string, python: string): Promise<unknown> {
  return output("python3", ["-c", `import json, time\n${python}`], { TZ: timeZone, LC_ALL: "C" })
    .then(JSON.parse);
}

/** Lua code that returns `expression` (a table of strings) as a JSON list of strings. */
function jsonList(body: string): string {
  return `local out = {}
    ${body}
    for i, v in ipairs(out) do out[i] = string.format("%q", v):gsub("\\\\\\n", "\\\\n"):gsub("\\\\9", "\\\\t") end
    return "[" .. table.concat(out, ",") .. "]"`;
}

for (const timeZone of ["UTC", "America/New_York", "Asia/Kolkata"]) {
  Deno.test(`os.date gives glibc's strftime for every conversion, local and UTC (TZ=${timeZone})`, async () => {
    const specs = JSON.stringify(CONVERSIONS);
    const lua = jsonList(`
      local specs = {${CONVERSIONS.map((s) => JSON.stringify(s)).join(",")}}
      for _, t in ipairs({${INSTANTS.join(",")}}) do
        for _, s in ipairs(specs) do
          out[#out + 1] = os.date("%" .. s, t)
          out[#out + 1] = os.date("!%" .. s, t)
        end
      end`);
    const python = `
specs = ${specs}
out = []
for t in ${JSON.stringify(INSTANTS)}:
    for s in specs:
        out.append(time.strftime("%" + s, time.localtime(t)))
        out.append(time.strftime("%" + s, time.gmtime(t)))
print(json.dumps(out))`;
    const [ours, glibc] = await Promise.all([luaIn(timeZone, lua), pythonIn(timeZone, python)]);
    const labels = INSTANTS.flatMap((t) =>
      CONVERSIONS.flatMap((s) => [`${t} %${s}`, `${t} !%${s}`])
    );
    const differing = labels.filter((label, i) => {
      // Zone names: glibc knows abbreviations that JavaScript's Intl spells as offsets.
      if (label.endsWith("%Z") && timeZone === "Asia/Kolkata") return false;
      return (ours as string[])[i] !== (glibc as string[])[i];
    }).map((label) =>
      `${label}: ${(ours as string[])[labels.indexOf(label)]} vs ${
        (glibc as string[])[labels.indexOf(label)]
      }`
    );
    assert.deepEqual(differing, []);
  });

  Deno.test(`os.date("*t") and os.time give glibc's localtime and mktime (TZ=${timeZone})`, async () => {
    // mktime's -1 is also its error value, which Lua reports as unrepresentable.
    const instants = INSTANTS.filter((t) => t !== -1);
    const lua = jsonList(`
      for _, t in ipairs({${instants.join(",")}}) do
        local d = os.date("*t", t)
        out[#out + 1] = string.format("%d %d %d %d %d %d %d %d %s %d", d.year, d.month, d.day,
          d.hour, d.min, d.sec, d.wday, d.yday, tostring(d.isdst), os.time(d))
      end
      -- Fields out of range carry over, and a given isdst moves the time by the zone's shift.
      out[#out + 1] = tostring(os.time({year = 2024, month = 14, day = 40, hour = 25, min = 61, sec = 61}))
      out[#out + 1] = tostring(os.time({year = 2024, month = 7, day = 1, hour = 12, isdst = false}))
      out[#out + 1] = tostring(os.time({year = 2024, month = 1, day = 1, hour = 12, isdst = true}))`);
    const python = `
out = []
for t in ${JSON.stringify(instants)}:
    d = time.localtime(t)
    out.append("%d %d %d %d %d %d %d %d %s %d" % (d.tm_year, d.tm_mon, d.tm_mday, d.tm_hour,
        d.tm_min, d.tm_sec, (d.tm_wday + 1) % 7 + 1, d.tm_yday, "true" if d.tm_isdst else "false",
        time.mktime(d)))
out.append(str(int(time.mktime((2024, 14, 40, 25, 61, 61, 0, 0, -1)))))
out.append(str(int(time.mktime((2024, 7, 1, 12, 0, 0, 0, 0, 0)))))
out.append(str(int(time.mktime((2024, 1, 1, 12, 0, 0, 0, 0, 1)))))
print(json.dumps(out))`;
    const [ours, glibc] = await Promise.all([luaIn(timeZone, lua), pythonIn(timeZone, python)]);
    if (timeZone !== "America/New_York") {
      // A zone without daylight time: glibc moves an isdst=true time back an hour anyway,
      // musl (and lomq) leave it. That last case is checked against the plain time instead.
      (glibc as string[]).pop();
      const winterAsSummer = (ours as string[]).pop();
      const july = Number((ours as string[]).at(-1));
      assert.equal(winterAsSummer, String(july - 182 * 86400)); // 2024-01-01 12:00, same offset
    }
    assert.deepEqual(ours, glibc);
  });
}

Deno.test("os.clock, os.difftime and the current time work", async () => {
  const values = await luaIn(
    "UTC",
    jsonList(`
    local before = os.clock()
    local x = 0
    for i = 1, 2e6 do x = x + i end
    out[#out + 1] = tostring(os.clock() >= before)
    out[#out + 1] = tostring(os.difftime(10, 3))
    out[#out + 1] = tostring(math.abs(os.time() - ${Math.floor(Date.now() / 1000)}) < 60)
    out[#out + 1] = tostring(os.date("%Y") == os.date("*t").year .. "")`),
  );
  assert.deepEqual(values, ["true", "7.0", "true", "true"]);
});
