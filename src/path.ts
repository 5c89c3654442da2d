/**
 * The few file-path operations lomq needs (absolute path, folder, base name, join), for POSIX
 * and Windows paths, without `node:path`.
 *
 * Why not `node:path`: importing it loads Deno's Node compatibility layer, about 20 ms of a
 * start-up whose target is 150 ms, for four functions. tests/path_test.ts checks these against
 * `node:path`'s `posix` and `win32` flavours.
 *
 * ```ts
 * import { resolvePath, parentFolder } from "./path.ts";
 * parentFolder(resolvePath("examples/hello.lua")); // the checkout's examples folder
 * ```
 *
 * @module
 */

/** Which flavour of paths, and the folder relative paths start from. */
export interface PathStyle {
  /** Windows paths: `\` and `/` separate, drive letters and UNC shares are roots. */
  windows: boolean;
  /** The current folder, absolute. */
  cwd: () => string;
}

const HOST: PathStyle = { windows: Deno.build.os === "windows", cwd: () => Deno.cwd() };

function separatorOf(style: PathStyle): string {
  return style.windows ? "\\" : "/";
}

function splitter(style: PathStyle): RegExp {
  return style.windows ? /[\\/]+/ : /\/+/;
}

/**
 * The root that starts `path` (`/`, `C:\`, `\\server\share\`), written in the style's
 * separators, and how many characters of `path` it spans; an empty root for a relative path.
 * A Windows path rooted without a drive (`\folder`) takes the current folder's drive.
 */
function rootOf(path: string, style: PathStyle): { root: string; length: number } {
  if (!style.windows) {
    return path.startsWith("/") ? { root: "/", length: 1 } : { root: "", length: 0 };
  }
  const unc = /^[\\/]{2}([^\\/]+)[\\/]+([^\\/]+)[\\/]*/.exec(path);
  if (unc) return { root: `\\\\${unc[1]}\\${unc[2]}\\`, length: unc[0].length };
  const drive = /^([A-Za-z]:)[\\/]+/.exec(path);
  if (drive) return { root: `${drive[1]}\\`, length: drive[0].length };
  if (/^[\\/]/.test(path)) {
    const cwdRoot = rootOf(style.cwd(), style);
    return { root: cwdRoot.root || "\\", length: 1 };
  }
  return { root: "", length: 0 };
}

/** `segments` with `.` dropped and each `..` taking away the segment before it. */
function normalSegments(segments: string[], keepLeadingParents: boolean): string[] {
  const out: string[] = [];
  for (const segment of segments) {
    if (segment === "" || segment === ".") continue;
    if (segment === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (segment !== ".." || keepLeadingParents) out.push(segment);
  }
  return out;
}

/** `path` as an absolute, normalised path (relative ones start at the current folder). */
export function resolvePath(path: string, style: PathStyle = HOST): string {
  let { root, length } = rootOf(path, style);
  let rest = path.slice(length);
  if (root === "") {
    const cwd = style.cwd();
    ({ root, length } = rootOf(cwd, style));
    rest = `${cwd.slice(length)}${separatorOf(style)}${path}`;
  }
  return root + normalSegments(rest.split(splitter(style)), false).join(separatorOf(style));
}

/** The folder that holds the file or folder at `path` (absolute paths; a root is its own). */
export function parentFolder(path: string, style: PathStyle = HOST): string {
  const absolute = resolvePath(path, style);
  const { length } = rootOf(absolute, style);
  const last = Math.max(absolute.lastIndexOf(separatorOf(style)), length - 1);
  return last < length ? absolute.slice(0, length) : absolute.slice(0, last);
}

/** The last segment of `path`. */
export function baseName(path: string, style: PathStyle = HOST): string {
  const segments = path.slice(rootOf(path, style).length).split(splitter(style));
  while (segments.length > 0 && segments[segments.length - 1] === "") segments.pop();
  return segments[segments.length - 1] ?? "";
}

/** `base` and `relative` joined and normalised (a relative result stays relative). */
export function joinPath(base: string, relative: string, style: PathStyle = HOST): string {
  const { root, length } = rootOf(base, style);
  const rest = `${base.slice(length)}${separatorOf(style)}${relative}`;
  const joined = normalSegments(rest.split(splitter(style)), root === "").join(separatorOf(style));
  return root + joined || ".";
}
