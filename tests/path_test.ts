// src/path.ts against node:path's posix and win32 flavours, on the path shapes lomq meets:
// script paths as typed (relative, absolute, with . and .., doubled separators), folders and
// require's candidates.
import assert from "node:assert/strict";
import { posix, resolve, win32 } from "node:path";
import { baseName, joinPath, parentFolder, type PathStyle, resolvePath } from "../src/path.ts";

const POSIX: PathStyle = { windows: false, cwd: () => "/home/trader/scripts" };
const WINDOWS: PathStyle = { windows: true, cwd: () => "C:\\Users\\trader\\QUIK\\lua" };

const POSIX_PATHS = [
  "hello.lua",
  "./hello.lua",
  "examples/hello.lua",
  "examples//hello.lua",
  "../other/./x.lua",
  "../../../../../x.lua",
  "/srv/lomq/bot.lua",
  "/srv/lomq/../bot.lua",
  "/",
  "a/b/../../c.lua",
];
const WINDOWS_PATHS = [
  "hello.lua",
  ".\\hello.lua",
  "examples\\hello.lua",
  "examples/hello.lua",
  "..\\other\\.\\x.lua",
  "D:\\robots\\bot.lua",
  "d:/robots//bot.lua",
  "\\\\fileserver\\share\\bots\\bot.lua",
  "\\robots\\bot.lua",
  "C:\\",
  "..\\..\\..\\..\\..\\..\\x.lua",
];

Deno.test("resolvePath and parentFolder give what node:path's resolve and dirname give", () => {
  for (const path of POSIX_PATHS) {
    const expected = posix.resolve(POSIX.cwd(), path);
    assert.equal(resolvePath(path, POSIX), expected, path);
    assert.equal(parentFolder(path, POSIX), posix.dirname(expected), path);
  }
  for (const path of WINDOWS_PATHS) {
    const expected = win32.resolve(WINDOWS.cwd(), path);
    assert.equal(resolvePath(path, WINDOWS), expected, path);
    assert.equal(parentFolder(path, WINDOWS), win32.dirname(expected), path);
  }
});

Deno.test("joinPath and baseName give what node:path's join and basename give", () => {
  const relatives = ["init.lua", "pkg/init.lua", "a/../b.lua", "../../x.lua", "./y.lua"];
  for (const base of ["/srv/lomq", "scripts", "/", "a/b", "."]) {
    for (const relative of relatives) {
      assert.equal(
        joinPath(base, relative, POSIX),
        posix.join(base, relative),
        `${base} + ${relative}`,
      );
    }
  }
  for (const base of ["C:\\bots", "bots", "\\\\srv\\share\\bots", "D:\\"]) {
    for (const relative of relatives) {
      assert.equal(
        joinPath(base, relative, WINDOWS),
        win32.join(base, relative),
        `${base} + ${relative}`,
      );
    }
  }
  for (const path of POSIX_PATHS) assert.equal(baseName(path, POSIX), posix.basename(path), path);
  for (const path of WINDOWS_PATHS) {
    assert.equal(baseName(path, WINDOWS), win32.basename(path), path);
  }
});

Deno.test("the default style is this host's: a relative path starts at Deno.cwd()", () => {
  assert.equal(resolvePath("x/../y.lua"), resolve("y.lua"));
  assert.equal(parentFolder("y.lua"), Deno.cwd());
});
