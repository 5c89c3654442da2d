/**
 * Command-line parsing shared by the subcommands: options anywhere among the arguments,
 * negative numbers taken as arguments, and a one-line error with the nearest valid
 * option for a typo.
 *
 * node:util parseArgs would read `lomq call add -1 2` as an unknown option `-1`, and
 * its error for a typo names no alternative, hence this small parser.
 *
 * @module
 */

/** Exit code of a usage error. */
export const EXIT_USAGE = 2;

/** A command-line mistake: reported in one line, exit code 2. */
export class UsageError extends Error {
  /** The error class name, for logs and `instanceof`-free checks. */
  override name = "UsageError";
}

/** One option a command accepts. */
export interface OptionSpec {
  /** Long name without the dashes: `timeout` for `--timeout`. */
  name: string;
  /** One-letter alias: `t` for `-t`. */
  short?: string;
  /** Whether the option takes a value (`--uri URI`) or is a flag (`--json`). */
  takesValue: boolean;
}

/** Parsed arguments: option values by long name, and the other arguments in order. */
export interface ParsedArgs {
  /** Option values; a flag that is present is `true`; the last repetition wins. */
  options: Map<string, string | true>;
  /** Non-option arguments, in order. */
  positionals: string[];
}

const HELP: OptionSpec = { name: "help", short: "h", takesValue: false };

/** A negative number such as `-1` or `-2.5e3` is an argument, not an option. */
function isNegativeNumber(arg: string): boolean {
  return /^-(\d|\.\d|Infinity$|NaN$)/.test(arg);
}

/**
 * Parses `args` against `specs` (`--help`/`-h` is always accepted). Everything after
 * `--` is positional. Throws {@linkcode UsageError} for an unknown option (naming the
 * nearest known one) or a missing value.
 */
export function parseOptions(args: readonly string[], specs: readonly OptionSpec[]): ParsedArgs {
  const all = [...specs, HELP];
  const options = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || isNegativeNumber(arg)) {
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith("--");
    const equals = arg.indexOf("=");
    const name = long ? arg.slice(2, equals < 0 ? undefined : equals) : arg.slice(1, 2);
    const spec = all.find((s) => (long ? s.name === name : s.short === name));
    if (!spec) {
      const suggestion = long
        ? nearest(name, all.map((s) => s.name))
        : all.find((s) => s.short?.toLowerCase() === name.toLowerCase())?.name;
      throw new UsageError(
        `unknown option '${arg.slice(0, equals < 0 ? undefined : equals)}'` +
          (suggestion ? ` (did you mean '--${suggestion}'?)` : ""),
      );
    }
    let inline: string | undefined;
    if (long && equals >= 0) inline = arg.slice(equals + 1);
    else if (!long && arg.length > 2) inline = arg.slice(2);
    if (!spec.takesValue) {
      if (inline !== undefined) throw new UsageError(`option --${spec.name} takes no value`);
      options.set(spec.name, true);
      continue;
    }
    if (inline === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith("-") && next !== "-" && !isNegativeNumber(next))) {
        throw new UsageError(`option --${spec.name} needs a value`);
      }
      inline = next;
      i++;
    }
    options.set(spec.name, inline);
  }
  return { options, positionals };
}

/** The value of a string option, or `fallback`. */
export function stringOption(parsed: ParsedArgs, name: string, fallback: string): string {
  const value = parsed.options.get(name);
  return typeof value === "string" ? value : fallback;
}

/** Whether a flag was given. */
export function flag(parsed: ParsedArgs, name: string): boolean {
  return parsed.options.has(name);
}

/**
 * The value of a numeric option, checked to be an integer (unless `integer: false`)
 * within `[min, max]`; undefined when absent. Throws {@linkcode UsageError} otherwise.
 */
export function numberOption(
  parsed: ParsedArgs,
  name: string,
  limits: { min: number; max?: number; integer?: boolean },
): number | undefined {
  const text = parsed.options.get(name);
  if (typeof text !== "string") return undefined;
  const value = Number(text);
  const max = limits.max ?? Number.MAX_SAFE_INTEGER;
  const integer = limits.integer ?? true;
  if (
    text.trim() === "" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) ||
    value < limits.min || value > max
  ) {
    const kind = integer ? "an integer" : "a number";
    throw new UsageError(`--${name} must be ${kind} from ${limits.min} to ${max}, got '${text}'`);
  }
  return value;
}

/** The candidate closest to `word` by edit distance, when it is close enough. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/**
 * What a subcommand's module gives the command table (src/cli/mod.ts), as its `COMMAND`:
 * its help text and entry point.
 */
export interface CommandModule {
  /** What `lomq COMMAND --help` prints. */
  help: string;
  /** Runs the command on the arguments after its name; resolves with the exit code. */
  main(args: string[]): Promise<number>;
}

/** What a subcommand needs to parse its arguments and explain itself. */
export interface Command {
  /** The subcommand's name: `call` for `lomq call`. */
  name: string;
  /** Printed for `--help`/`-h`. */
  help: string;
  /** The options it accepts besides `--help`. */
  specs: readonly OptionSpec[];
}

/**
 * Runs a subcommand: parses `args`, prints the help for `--help`, otherwise runs `body`
 * with the parsed arguments. A {@linkcode UsageError} from the parsing or the body becomes
 * its one-line message on stderr (with a pointer to the help) and exit code 2.
 */
export async function runCommand(
  command: Command,
  args: readonly string[],
  body: (parsed: ParsedArgs) => Promise<number>,
): Promise<number> {
  try {
    const parsed = parseOptions(args, command.specs);
    if (flag(parsed, "help")) {
      console.log(command.help);
      return 0;
    }
    return await body(parsed);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`lomq ${command.name}: ${error.message}; see lomq ${command.name} --help`);
    return EXIT_USAGE;
  }
}
