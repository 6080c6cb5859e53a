/** Small helpers shared by the unit specs. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { shopConfig, type ShopConfig } from "../../lib/config";
import type { AuthUser, ShopMeta } from "../../lib/types";

export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(25);
	}
}

/** A fresh meta object for a call; Moleculer writes `$statusCode` etc. back into it for local calls. */
export function metaOf(user?: AuthUser, idempotencyKey?: string): ShopMeta {
	const meta: ShopMeta = {};
	if (user) meta.user = user;
	if (idempotencyKey !== undefined) meta.idempotencyKey = idempotencyKey;
	return meta;
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
	const dir = mkdtempSync(path.join(tmpdir(), prefix));
	return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Patches the process's memoised configuration (lib/config.ts reads the environment once), as an
 * operator changing the environment between two starts would; answers a function that restores it.
 *
 * Why not a fresh module registry (jest.isolateModules): Sequelize loads its dialect lazily, so a
 * second copy of it would mix with the first and break its query building.
 */
export function patchConfig(changes: Partial<ShopConfig>): () => void {
	const config = shopConfig();
	const saved: Partial<ShopConfig> = {};
	for (const key of Object.keys(changes) as Array<keyof ShopConfig>) (saved as Record<string, unknown>)[key] = config[key];
	Object.assign(config, changes);
	return () => {
		Object.assign(config, saved);
	};
}

/** A configuration patch that puts every service's database in `dir`. */
export const databasesIn = (dir: string): Pick<ShopConfig, "dbUrl"> => ({ dbUrl: service => `sqlite:${path.join(dir, `${service}.sqlite`)}` });
