/** Small helpers shared by the unit specs. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Service } from "moleculer";
import type { Database } from "../../lib/db/database";
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

/** The secret the unit specs' users service signs its tokens with. */
export const JWT_SECRET = "unit-test-secret-0123456789";

/**
 * The settings a unit spec gives each data service, so that nothing depends on the environment the
 * tests run in (the services' defaults come from it): every database in memory, or, with `dir`, a
 * SQLite file per service in `dir` (shared by a node and its restarted self); a known JWT secret,
 * no admin account, no demo catalogue.
 *
 *     broker.createService({ name: "orders", mixins: [OrdersService], settings: { ...unitSettings().orders, paymentTimeoutMs: 300 } })
 */
export function unitSettings(dir?: string) {
	const db = (service: string) => (dir ? `sqlite:${path.join(dir, `${service}.sqlite`)}` : "sqlite::memory:");
	return {
		users: { db: db("users"), jwtSecret: JWT_SECRET, jwtSecretGenerated: false, admin: null as { email: string; password: string } | null },
		inventory: { db: db("inventory"), seedDemo: false },
		orders: { db: db("orders") },
		payments: { db: db("payments") }
	};
}

/** The database a started data service has opened (mixins/db.mixin.ts), for a test to plant or inspect rows. */
export function dbOf(service: Service | null | undefined): Database {
	const db = (service as (Service & { db?: Database }) | null | undefined)?.db;
	if (!db) throw new Error("That service is not started, or has no database");
	return db;
}

/** The store a started data service works with (mixins/db.mixin.ts). */
export function storeOf<Store>(service: Service | null | undefined): Store {
	const store = (service as (Service & { store?: Store }) | null | undefined)?.store;
	if (!store) throw new Error("That service is not started, or has no store");
	return store;
}

/** `SELECT COUNT(*)` with bound parameters, as a number. */
export async function countRows(db: Database, statement: string, params: Array<string | number | null> = []): Promise<number> {
	const row = await db.one<{ count: number | string }>(statement, params);
	return Number(row?.count ?? 0);
}
