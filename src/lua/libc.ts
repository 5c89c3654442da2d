/**
 * The host side of the Lua build's C library: the functions `glue.wasm` imports for time,
 * dates, output and the file system, answered without emscripten's JavaScript runtime.
 *
 * Why our own: wasmoon's glue is a Node-flavoured emscripten runtime. Loading it under Deno
 * pulls in the CommonJS loader and `node:fs`, `node:path` and `node:url` (see `wasm.ts`), for
 * a file system and a tty that the sandbox (`sandbox.ts`) keeps scripts away from anyway.
 * What remains reachable from Lua is small: `os.date`, `os.time`, `os.clock` and
 * `os.difftime`, and the C library's own writes to stderr (a panic message).
 *
 * What each import does here:
 * - Dates and times follow the C standard in the "C" locale, with the process's time zone as
 *   the JavaScript `Date` sees it (the `TZ` variable). `%Z` is the zone's short name
 *   (`EST`, `UTC`, or `GMT+5:30` where the zone has none).
 * - Writes to descriptors 1 and 2 go to the process's stdout and stderr, byte for byte.
 * - Every other descriptor, file and directory operation fails with a C error code: scripts
 *   have no files (the sandbox replaced `io.open` and the rest), and nothing here reaches the
 *   disk or keeps data outside the Lua heap.
 * - `system` reports that there is no shell; `exit` and `abort` raise JavaScript errors, which
 *   the engine treats as a broken state.
 *
 * ```ts
 * import { libcImports } from "./libc.ts";
 * let memory: WebAssembly.Memory | undefined; // the instance's, once it exists
 * const { env, wasi } = libcImports(() => ({
 *   memory: memory!,
 *   malloc: () => 0,
 *   errnoLocation: () => 0,
 * }));
 * // WebAssembly.instantiate(bytes, { env, wasi_snapshot_preview1: wasi })
 * ```
 *
 * @module
 */

import { writeAllSync } from "../bytes.ts";

/** What the imports need of the instance once it exists. */
export interface LibcInstance {
  /** The instance's memory (its buffer changes when it grows). */
  readonly memory: WebAssembly.Memory;
  /** The C allocator, for the strings `tzset` hands out. */
  malloc(size: number): number;
  /** Where the C library keeps `errno`. */
  errnoLocation(): number;
}

// The C error codes of emscripten's libc (WASI's numbering).
const EACCES = 2;
const EBADF = 8;
const ENOSYS = 52;
const ENOTTY = 59;
const EOVERFLOW = 61;
const ESPIPE = 70;

// Offsets of the fields of musl's `struct tm` on wasm32 (eleven 4-byte fields).
const TM_SEC = 0;
const TM_MIN = 4;
const TM_HOUR = 8;
const TM_MDAY = 12;
const TM_MON = 16;
const TM_YEAR = 20;
const TM_WDAY = 24;
const TM_YDAY = 28;
const TM_ISDST = 32;
const TM_GMTOFF = 36;
const TM_ZONE = 40;

const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
/** Days before each month in a common year. */
const DAYS_BEFORE_MONTH = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
/** Seconds that a JavaScript `Date` can hold either side of the epoch. */
const MAX_DATE_SECONDS = 8.64e12;

/** The fields of a `struct tm`, as numbers. */
interface BrokenDownTime {
  sec: number;
  min: number;
  hour: number;
  mday: number;
  mon: number;
  /** Years since 1900. */
  year: number;
  wday: number;
  yday: number;
  isdst: number;
  /** Seconds east of UTC. */
  gmtoff: number;
  zone: string;
}

function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function dayOfYear(year: number, month: number, day: number): number {
  return DAYS_BEFORE_MONTH[month] + (month > 1 && isLeap(year) ? 1 : 0) + day - 1;
}

function pad(value: number, width: number, fill = "0"): string {
  const text = String(Math.abs(value)).padStart(width, fill);
  return value < 0 ? `-${text}` : text;
}

/** Weeks in an ISO 8601 week-based year: 53 when it starts or ends on a Thursday. */
function isoWeeksIn(year: number): number {
  const p = (y: number) =>
    (((y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400)) % 7) + 7) % 7;
  return p(year) === 4 || p(year - 1) === 3 ? 53 : 52;
}

/** The ISO 8601 week-based year and week number of a date. */
function isoWeek(tm: BrokenDownTime): { year: number; week: number } {
  const year = tm.year + 1900;
  const isoWeekday = tm.wday === 0 ? 7 : tm.wday;
  const week = Math.floor((tm.yday + 1 - isoWeekday + 10) / 7);
  if (week < 1) return { year: year - 1, week: isoWeeksIn(year - 1) };
  if (week > isoWeeksIn(year)) return { year: year + 1, week: 1 };
  return { year, week };
}

/** The short name of the time zone in force at `date` (`EST`, `UTC`, `GMT+5:30`). */
function zoneName(date: Date): string {
  const parts = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(date);
  return parts.find((part) => part.type === "timeZoneName")?.value ?? "UTC";
}

/** The "C" locale's expansion of one conversion (without its `E` or `O` modifier). */
function convert(spec: string, tm: BrokenDownTime): string | undefined {
  const year = tm.year + 1900;
  const hour12 = tm.hour % 12 === 0 ? 12 : tm.hour % 12;
  switch (spec) {
    case "a":
      return WEEKDAYS[tm.wday]?.slice(0, 3) ?? "?";
    case "A":
      return WEEKDAYS[tm.wday] ?? "?";
    case "b":
    case "h":
      return MONTHS[tm.mon]?.slice(0, 3) ?? "?";
    case "B":
      return MONTHS[tm.mon] ?? "?";
    case "c":
      return formatTime("%a %b %e %H:%M:%S %Y", tm);
    case "C":
      return pad(Math.floor(year / 100), 2);
    case "d":
      return pad(tm.mday, 2);
    case "D":
    case "x":
      return formatTime("%m/%d/%y", tm);
    case "e":
      return pad(tm.mday, 2, " ");
    case "F":
      return formatTime("%Y-%m-%d", tm);
    case "g":
      return pad(((isoWeek(tm).year % 100) + 100) % 100, 2);
    case "G":
      return String(isoWeek(tm).year);
    case "H":
      return pad(tm.hour, 2);
    case "I":
      return pad(hour12, 2);
    case "j":
      return pad(tm.yday + 1, 3);
    case "m":
      return pad(tm.mon + 1, 2);
    case "M":
      return pad(tm.min, 2);
    case "n":
      return "\n";
    case "p":
      return tm.hour < 12 ? "AM" : "PM";
    case "r":
      return formatTime("%I:%M:%S %p", tm);
    case "R":
      return formatTime("%H:%M", tm);
    case "S":
      return pad(tm.sec, 2);
    case "t":
      return "\t";
    case "T":
    case "X":
      return formatTime("%H:%M:%S", tm);
    case "u":
      return String(tm.wday === 0 ? 7 : tm.wday);
    case "U":
      return pad(Math.floor((tm.yday + 7 - tm.wday) / 7), 2);
    case "V":
      return pad(isoWeek(tm).week, 2);
    case "w":
      return String(tm.wday);
    case "W":
      return pad(Math.floor((tm.yday + 7 - ((tm.wday + 6) % 7)) / 7), 2);
    case "y":
      return pad(((year % 100) + 100) % 100, 2);
    case "Y":
      return String(year);
    case "z": {
      const minutes = Math.floor(Math.abs(tm.gmtoff) / 60);
      return `${tm.gmtoff < 0 ? "-" : "+"}${pad(Math.floor(minutes / 60), 2)}${
        pad(minutes % 60, 2)
      }`;
    }
    case "Z":
      return tm.zone;
    case "%":
      return "%";
    default:
      return undefined;
  }
}

/**
 * C's `strftime` in the "C" locale. A conversion the standard does not define is copied as
 * it stands (Lua checks its formats before they get here).
 */
function formatTime(format: string, tm: BrokenDownTime): string {
  return format.replace(/%[EO]?(.)/gs, (whole, spec: string) => convert(spec, tm) ?? whole);
}

/** The broken-down time of `seconds` since the epoch, in UTC or in the local zone. */
function breakDown(seconds: number, local: boolean): BrokenDownTime {
  const date = new Date(seconds * 1000);
  if (!local) {
    const year = date.getUTCFullYear();
    return {
      sec: date.getUTCSeconds(),
      min: date.getUTCMinutes(),
      hour: date.getUTCHours(),
      mday: date.getUTCDate(),
      mon: date.getUTCMonth(),
      year: year - 1900,
      wday: date.getUTCDay(),
      yday: dayOfYear(year, date.getUTCMonth(), date.getUTCDate()),
      isdst: 0,
      gmtoff: 0,
      zone: "GMT",
    };
  }
  const year = date.getFullYear();
  return {
    sec: date.getSeconds(),
    min: date.getMinutes(),
    hour: date.getHours(),
    mday: date.getDate(),
    mon: date.getMonth(),
    year: year - 1900,
    wday: date.getDay(),
    yday: dayOfYear(year, date.getMonth(), date.getDate()),
    isdst: isDaylightTime(date) ? 1 : 0,
    gmtoff: -date.getTimezoneOffset() * 60,
    zone: Number.isNaN(seconds) ? "" : zoneName(date),
  };
}

/** Whether daylight saving time is in force at `date`: its offset is the year's smaller one. */
function isDaylightTime(date: Date): boolean {
  const january = new Date(date.getFullYear(), 0, 1).getTimezoneOffset();
  const july = new Date(date.getFullYear(), 6, 1).getTimezoneOffset();
  return january !== july && date.getTimezoneOffset() === Math.min(january, july);
}

/** Reads `struct tm` at `at`. */
function readTm(view: DataView, at: number, heap: Uint8Array): BrokenDownTime {
  const field = (offset: number) => view.getInt32(at + offset, true);
  const zoneAt = view.getUint32(at + TM_ZONE, true);
  return {
    sec: field(TM_SEC),
    min: field(TM_MIN),
    hour: field(TM_HOUR),
    mday: field(TM_MDAY),
    mon: field(TM_MON),
    year: field(TM_YEAR),
    wday: field(TM_WDAY),
    yday: field(TM_YDAY),
    isdst: field(TM_ISDST),
    gmtoff: field(TM_GMTOFF),
    zone: zoneAt === 0 ? "" : cString(heap, zoneAt),
  };
}

/** Writes the numeric fields of `tm` into `struct tm` at `at` (not `tm_zone`). */
function writeTm(view: DataView, at: number, tm: BrokenDownTime): void {
  const fields: [number, number][] = [
    [TM_SEC, tm.sec],
    [TM_MIN, tm.min],
    [TM_HOUR, tm.hour],
    [TM_MDAY, tm.mday],
    [TM_MON, tm.mon],
    [TM_YEAR, tm.year],
    [TM_WDAY, tm.wday],
    [TM_YDAY, tm.yday],
    [TM_ISDST, tm.isdst],
    [TM_GMTOFF, tm.gmtoff],
  ];
  for (const [offset, value] of fields) view.setInt32(at + offset, value | 0, true);
}

function cString(heap: Uint8Array, at: number): string {
  let end = at;
  while (end < heap.length && heap[end] !== 0) end++;
  return new TextDecoder().decode(heap.subarray(at, end));
}

/**
 * C's `mktime` on the local zone: normalises the fields, settles `tm_isdst` (a negative one
 * is decided from the date; one that disagrees with the date moves the time by the zone's
 * daylight shift, as C libraries do) and returns the seconds since the epoch, or undefined
 * when the date is beyond what a `Date` holds.
 */
function makeTime(tm: BrokenDownTime): { seconds: number; tm: BrokenDownTime } | undefined {
  // Not `new Date(y, m, d, ...)`, which reads years 0-99 as 1900-1999. Fields out of range
  // carry over, as C's do.
  const date = new Date(0);
  date.setFullYear(tm.year + 1900, tm.mon, tm.mday);
  date.setHours(tm.hour, tm.min, tm.sec, 0);
  if (Number.isNaN(date.getTime())) return undefined;
  const january = new Date(date.getFullYear(), 0, 1).getTimezoneOffset();
  const july = new Date(date.getFullYear(), 6, 1).getTimezoneOffset();
  const summer = Math.min(january, july);
  const winter = Math.max(january, july);
  const inSummer = date.getTimezoneOffset() === summer;
  if (tm.isdst >= 0 && january !== july && (tm.isdst > 0) !== inSummer) {
    date.setTime(
      date.getTime() + 60_000 * ((tm.isdst > 0 ? summer : winter) - date.getTimezoneOffset()),
    );
  }
  const seconds = date.getTime() / 1000;
  if (Number.isNaN(seconds)) return undefined;
  return { seconds, tm: breakDown(seconds, true) };
}

/** The `env` and `wasi_snapshot_preview1` imports, bound to `instance` once it is set. */
export function libcImports(instance: () => LibcInstance): {
  env: Record<string, (...args: never[]) => unknown>;
  wasi: Record<string, (...args: never[]) => unknown>;
} {
  const view = () => new DataView(instance().memory.buffer);
  const heap = () => new Uint8Array(instance().memory.buffer);
  const setErrno = (code: number) => view().setInt32(instance().errnoLocation(), code, true);
  const fail = (code: number) => () => -code;

  const env = {
    abort: (): never => {
      throw new WebAssembly.RuntimeError("Aborted(native code called abort())");
    },
    exit: (code: number): never => {
      throw new Error(`the Lua engine's C library called exit(${code})`);
    },
    system: (command: number): number => {
      // system(NULL) asks whether a shell exists: none does.
      if (command === 0) return 0;
      setErrno(ENOSYS);
      return -1;
    },
    emscripten_date_now: (): number => Date.now(),
    _emscripten_get_now_is_monotonic: (): number => 1,
    strftime: (out: number, size: number, format: number, tmAt: number): number => {
      const h = heap();
      const text = formatTime(cString(h, format), readTm(view(), tmAt, h));
      const bytes = new TextEncoder().encode(text);
      if (bytes.length + 1 > size) return 0;
      h.set(bytes, out);
      h[out + bytes.length] = 0;
      return bytes.length;
    },
    _localtime_js: (time: bigint, tmAt: number): void => {
      writeTm(view(), tmAt, breakDown(clampSeconds(time), true));
    },
    _gmtime_js: (time: bigint, tmAt: number): void => {
      writeTm(view(), tmAt, breakDown(clampSeconds(time), false));
    },
    _mktime_js: (tmAt: number): bigint => {
      const made = makeTime(readTm(view(), tmAt, heap()));
      if (made === undefined) {
        setErrno(EOVERFLOW);
        return -1n;
      }
      writeTm(view(), tmAt, made.tm);
      return BigInt(Math.floor(made.seconds));
    },
    _tzset_js: (timezoneAt: number, daylightAt: number, namesAt: number): void => {
      const year = new Date().getFullYear();
      const january = new Date(year, 0, 1);
      const july = new Date(year, 6, 1);
      const [winter, summer] = july.getTimezoneOffset() < january.getTimezoneOffset()
        ? [january, july]
        : [july, january];
      const names = [zoneName(winter), zoneName(summer)].map((name) => {
        const bytes = new TextEncoder().encode(name);
        const at = instance().malloc(bytes.length + 1);
        if (at === 0) return 0;
        const h = heap();
        h.set(bytes, at);
        h[at + bytes.length] = 0;
        return at;
      });
      const v = view();
      v.setInt32(timezoneAt, winter.getTimezoneOffset() * 60, true);
      v.setInt32(
        daylightAt,
        january.getTimezoneOffset() !== july.getTimezoneOffset() ? 1 : 0,
        true,
      );
      v.setUint32(namesAt, names[0], true);
      v.setUint32(namesAt + 4, names[1], true);
    },
    // A terminal size query on stdout or stderr succeeds, so the C library line-buffers them.
    __syscall_ioctl: (fd: number): number => (fd === 1 || fd === 2 ? 0 : -ENOTTY),
    __syscall_fcntl64: (fd: number): number => (fd >= 0 && fd <= 2 ? 0 : -EBADF),
    __syscall_openat: fail(EACCES),
    __syscall_dup3: fail(EBADF),
    __syscall_unlinkat: fail(EACCES),
    __syscall_rmdir: fail(EACCES),
    __syscall_renameat: fail(EACCES),
    __syscall_readlinkat: fail(EACCES),
  };

  const wasi = {
    fd_write: (fd: number, iovs: number, count: number, writtenAt: number): number => {
      const stream = fd === 1 ? Deno.stdout : fd === 2 ? Deno.stderr : undefined;
      if (stream === undefined) return EBADF;
      const v = view();
      const h = heap();
      let written = 0;
      for (let i = 0; i < count; i++) {
        const at = v.getUint32(iovs + 8 * i, true);
        const length = v.getUint32(iovs + 8 * i + 4, true);
        try {
          writeAllSync(stream, h.subarray(at, at + length));
        } catch {
          // A closed or broken stdout must not break the Lua state: the bytes are dropped.
        }
        written += length;
      }
      v.setUint32(writtenAt, written, true);
      return 0;
    },
    fd_read: (): number => EBADF,
    fd_close: (fd: number): number => (fd >= 0 && fd <= 2 ? 0 : EBADF),
    fd_seek: (): number => ESPIPE,
    environ_sizes_get: (countAt: number, sizeAt: number): number => {
      // Scripts read the environment through the runtime's os.getenv, not the C library.
      const v = view();
      v.setUint32(countAt, 0, true);
      v.setUint32(sizeAt, 0, true);
      return 0;
    },
    environ_get: (): number => 0,
  };
  return { env, wasi };
}

/** A `time_t` as seconds a `Date` can hold (NaN past that, which gives zeroed fields). */
function clampSeconds(time: bigint): number {
  const seconds = Number(time);
  return Math.abs(seconds) <= MAX_DATE_SECONDS ? seconds : NaN;
}
