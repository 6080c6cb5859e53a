/** What every benchmark script gives the shops it starts: the admin, the environment, the seed and the seeded catalogue. */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type autocannon from "autocannon";
import { APPROVED_TEST_CARD } from "../lib/cards";
import { seededRandom } from "../lib/prng";
import { client, freePort, ROOT, tempDataDir } from "../test/support/shop";

/** The value after `name` on the command line (`--rounds 3`), or `fallback` when it is absent or has no value. */
export function option(name: string, fallback: string): string {
	const at = process.argv.indexOf(name);
	const value = at >= 0 ? process.argv[at + 1] : undefined;
	return value === undefined || value === "" ? fallback : value;
}

/** A progress line on stderr (stdout keeps the report), tagged with the script and the time. */
export function progressLog(tag: string): (message: string) => void {
	return message => process.stderr.write(`[${tag} ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export const BENCH_ADMIN = { email: "bench-admin@shop.test", password: "bench-admin-password" };
export const BENCH_SEED = 20261125;
/** Each seeded product's stock: more than any run sells (the start of the books). */
export const SEEDED_STOCK = 100_000_000;

/** A bench shop's environment: no demo catalogue, the bench admin, no login or register limit in the way of the load. */
export const BENCH_ENV: Record<string, string> = {
	SEED_DEMO: "false",
	ADMIN_EMAIL: BENCH_ADMIN.email,
	ADMIN_PASSWORD: BENCH_ADMIN.password,
	LOGIN_RATE_LIMIT: "1000000",
	REGISTER_RATE_LIMIT: "1000000",
	LOG_LEVEL: "warn"
};

/**
 * `count` products (`BENCH-<i>`, prices from the fixed seed, stock enough for any run) created 25 at a
 * time through the API with the admin's `token`; answers their ids in creation order (popularity rank).
 */
export async function seedProducts(baseUrl: string, token: string, count: number): Promise<string[]> {
	const api = client(baseUrl);
	const next = seededRandom(BENCH_SEED);
	const ids: string[] = [];
	for (let start = 0; start < count; start += 25) {
		const batch = Array.from({ length: Math.min(25, count - start) }, (_, i) => start + i);
		const created = await Promise.all(
			batch.map(i =>
				api.post(
					"/api/products",
					{
						sku: `BENCH-${i}`,
						name: `Bench product ${i}`,
						description: `Seeded product number ${i}`,
						price: 100 + Math.floor(next() * 10_000),
						stock: SEEDED_STOCK
					},
					{ token }
				)
			)
		);
		for (const res of created) {
			if (res.status !== 201) throw new Error(`seeding failed: ${res.status} ${JSON.stringify(res.body)}`);
			ids.push(res.body.id as string);
		}
	}
	return ids;
}

/** The bench admin's token on the shop at `baseUrl`. */
export async function benchAdminToken(baseUrl: string, admin = BENCH_ADMIN): Promise<string> {
	const login = await client(baseUrl).post("/api/users/login", admin);
	if (login.status !== 200) throw new Error(`admin login failed: ${login.status} ${JSON.stringify(login.body)}`);
	return login.body.token as string;
}

/** The ceiling (bench/bare-server.ts) on a free port, answering `routes` (path → body) from memory. */
export async function startBare(routes: Record<string, string>): Promise<{ url: string; child: ChildProcess; stop(): void }> {
	const port = await freePort();
	const routesFile = path.join(tempDataDir("shop-bench-bare-"), "routes.json");
	writeFileSync(routesFile, JSON.stringify(routes));
	const child = spawn(process.execPath, [path.join(ROOT, "dist/bench/bare-server.js"), String(port), routesFile], { stdio: ["ignore", "pipe", "inherit"] });
	await new Promise<void>((resolve, reject) => {
		child.stdout.once("data", () => resolve());
		child.once("exit", code => reject(new Error(`bare server exited with ${code}`)));
	});
	return { url: `http://127.0.0.1:${port}`, child, stop: () => void child.kill() };
}

/**
 * autocannon's request for `POST /api/orders`: each connection orders as one of `buyers` (their
 * tokens, dealt in turn), 1 to 3 units of a product drawn from `productIds` with the fixed seed.
 */
export function orderRequest(buyers: readonly string[], productIds: readonly string[]): autocannon.Request {
	const next = seededRandom(BENCH_SEED + 1);
	let connection = 0;
	return {
		method: "POST",
		path: "/api/orders",
		setupRequest: (request: autocannon.Request, context: object) => {
			const perConnection = context as { token?: string };
			perConnection.token ??= buyers[connection++ % buyers.length];
			const productId = productIds[Math.floor(next() * productIds.length)];
			return {
				...request,
				headers: { "content-type": "application/json", authorization: `Bearer ${perConnection.token}` },
				body: JSON.stringify({ items: [{ productId, quantity: 1 + Math.floor(next() * 3) }], payment: { card: APPROVED_TEST_CARD } })
			};
		}
	};
}
