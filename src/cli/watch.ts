/**
 * Watching a script and its modules for `lomq serve --watch`: one change callback per burst
 * of writes.
 *
 * Editors save in different ways: some write the file in place (several write events),
 * others (vim, many IDEs) write a new file and rename it over the old one, which replaces
 * the file's inode. So the folders holding the files are watched, not the files, and each
 * event's paths are matched against the files' names; a burst of events ends in one
 * callback once the folder has been quiet for {@linkcode QUIET_MS}.
 *
 * ```ts
 * import { FileWatcher } from "./watch.ts";
 * const watcher = new FileWatcher(() => console.log("changed"));
 * watcher.watch(["/tmp/script.lua", "/tmp/util.lua"]);
 * // ... later
 * watcher.close();
 * ```
 *
 * @module
 */

import { baseName, joinPath, parentFolder, resolvePath } from "../path.ts";

/** How long the watched folders must be quiet after a change before it is reported. */
export const QUIET_MS = 150;

/** Reports changes to a set of files, debounced. */
export class FileWatcher {
  readonly #onChange: () => void;
  readonly #quietMs: number;
  /** Watched folder (as given) to its watcher. */
  readonly #folders = new Map<string, Deno.FsWatcher>();
  /** The files, under both their given and their real folder's path. */
  #files = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** Calls `onChange` once after each burst of changes to the watched files. */
  constructor(onChange: () => void, quietMs = QUIET_MS) {
    this.#onChange = onChange;
    this.#quietMs = quietMs;
  }

  /** Watches exactly these files from now on (the folders of the files are watched). */
  watch(files: readonly string[]): void {
    if (this.#closed) return;
    const names = new Set<string>();
    const folders = new Set<string>();
    for (const file of files) {
      const path = resolvePath(file);
      const folder = parentFolder(path);
      folders.add(folder);
      names.add(path);
      // Events name the real path (a temporary folder may be behind a symlink).
      names.add(joinPath(realFolder(folder), baseName(path)));
    }
    this.#files = names;
    for (const [folder, watcher] of this.#folders) {
      if (folders.has(folder)) continue;
      watcher.close();
      this.#folders.delete(folder);
    }
    for (const folder of folders) {
      if (this.#folders.has(folder)) continue;
      let watcher: Deno.FsWatcher;
      try {
        watcher = Deno.watchFs(folder, { recursive: false });
      } catch {
        continue; // a folder that vanished: nothing in it to reload
      }
      this.#folders.set(folder, watcher);
      void this.#follow(watcher);
    }
  }

  /** Stops watching; no callback comes afterwards. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const watcher of this.#folders.values()) watcher.close();
    this.#folders.clear();
  }

  async #follow(watcher: Deno.FsWatcher): Promise<void> {
    try {
      for await (const event of watcher) {
        if (event.kind === "access") continue;
        if (event.paths.some((path) => this.#files.has(path))) this.#changed();
      }
    } catch {
      // closed, or the folder went away
    }
  }

  #changed(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (!this.#closed) this.#onChange();
    }, this.#quietMs);
  }
}

function realFolder(folder: string): string {
  try {
    return Deno.realPathSync(folder);
  } catch {
    return folder;
  }
}
