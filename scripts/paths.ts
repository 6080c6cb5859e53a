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
/** The arguments after `node` that start a shop node: `node <RUNNER> --config <CONFIG>`. */
export const NODE_ARGS: readonly string[] = [RUNNER, "--config", CONFIG];
