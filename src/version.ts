/**
 * The lomq version, from deno.json so that there is one place to change it.
 *
 * @module
 */

import config from "../deno.json" with { type: "json" };

/** The version of this lomq build. */
export const VERSION: string = config.version;
