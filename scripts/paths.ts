/**
 * Where the project's files are, for everything that starts a shop node as `npm start` does: the
 * operator's `npm run cluster` (scripts/cluster.ts) and the test and benchmark support
 * (test/support/shop.ts). Works from the TypeScript sources (ts-jest) and from the compiled dist/.
 */
import { existsSync } from "node:fs";
import path from "node:path";

/** The project's root: the first directory upwards with both package.json and node_modules/ or moleculer.config.ts. */
function findRoot(dir: string): string {
	if (existsSync(path.join(dir, "package.json")) && (existsSync(path.join(dir, "moleculer.config.ts")) || existsSync(path.join(dir, "node_modules"))))
		return dir;
	const parent = path.dirname(dir);
	if (parent === dir) throw new Error(`no project root above ${__dirname}`);
	return findRoot(parent);
}

export const ROOT = findRoot(__dirname);
/** moleculer-runner, the entry point of `npm start` and of the Docker image. */
export const RUNNER = path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js");
/** The compiled broker options (`npm run build` writes them). */
export const CONFIG = path.join(ROOT, "dist/moleculer.config.js");
/**
 * Node's flags for a shop node, as `npm start` and the Docker image give them. The request id in
 * every log line lives in an AsyncLocalStorage (lib/tracing.ts); on Node 22 that turns on async hooks
 * for every promise of the process, unless AsyncContextFrame carries it (the default from Node 24).
 * Measured: the full read pipeline 1.2-1.6x the requests/s, Moleculer's default broker 1.05x its
 * rate without the hooks instead of 0.58x (README "Performance").
 */
export const NODE_FLAGS: readonly string[] = ["--experimental-async-context-frame"];
/**
 * The arguments after `node` that start a shop node of the checkout at `root` (its node_modules/ and
 * dist/; another one for a benchmark's before/after): `node <NODE_FLAGS> <runner> --config <config>`,
 * flags this Node does not know left out.
 */
export function nodeArgsOf(root: string): string[] {
	const flags = NODE_FLAGS.filter(flag => process.allowedNodeEnvironmentFlags.has(flag));
	return [...flags, path.join(root, "node_modules/moleculer/bin/moleculer-runner.js"), "--config", path.join(root, "dist/moleculer.config.js")];
}
/** The arguments after `node` that start a shop node of this checkout. */
export const NODE_ARGS: readonly string[] = nodeArgsOf(ROOT);
