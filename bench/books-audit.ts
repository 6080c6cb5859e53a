/**
 * How long the books audit takes on a shop with many orders: the audit as it was (every order paged
 * with OFFSET through `GET /api/orders`, then one `GET /api/payments` per order, one `GET` per
 * product) against the audit of lib/books.ts (the admin export's keyset pages, each with its
 * payments, and the catalogue's pages), both over REST on the same shop, one after the other.
 *
 *   npm run build && node dist/bench/books-audit.js [--sizes 5000,20000] [--old-up-to 20000] [--concurrency 32]
 *
 * Starts a shop (SQLite, one process), seeds 100 products, then places orders as fast as it can
 * (1 in 50 cancelled by its buyer, 1 in 97 declined) up to each size, and times both audits there.
 * Also reports the shop process's CPU seconds (utime + stime) spent on each audit.
 */
import { readFileSync } from "node:fs";
import { auditBooks } from "../test/support/books";
import { client, registerUser, startShop, type ShopProcess } from "../test/support/shop";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD } from "../lib/cards";

const ADMIN = { email: "admin@books.bench", password: "admin-password-books" };
const PRODUCTS = 100;
const STOCK = 10_000_000;

type Api = ReturnType<typeof client>;

function option(name: string, fallback: string): string {
	const at = process.argv.indexOf(`--${name}`);
	return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback;
}

/** CPU seconds the process has used (utime + stime, Linux). */
function cpuSeconds(pid: number): number {
	const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
	return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function ok(api: Api, url: string, token?: string) {
	const res = await api.get(url, token ? { token } : undefined);
	if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${JSON.stringify(res.body)}`);
	return res.body;
}

/** The audit as it was before the export (lib/books.ts at 8f687f8), over REST: OFFSET pages, then a request per order and per product. */
async function oldAudit(api: Api, token: string, expectedStock: Map<string, number>): Promise<{ orders: number; problems: number }> {
	type Listed = { id: string; status: string; total: number; items: Array<{ productId: string; quantity: number }> };
	const orders: Listed[] = [];
	for (let page = 1; ; page++) {
		const answer = await ok(api, `/api/orders?page=${page}&pageSize=100`, token);
		orders.push(...answer.rows);
		if (page >= answer.totalPages) {
			if (orders.length !== answer.total) throw new Error(`listed ${orders.length} for a total of ${answer.total}`);
			break;
		}
	}
	let problems = 0;
	const held = new Map<string, number>();
	for (const order of orders.filter(order => order.status !== "cancelled")) {
		for (const item of order.items) held.set(item.productId, (held.get(item.productId) ?? 0) + item.quantity);
	}
	for (const [productId, expected] of expectedStock) {
		const stock = (await ok(api, `/api/products/${productId}`)).stock as number;
		if (stock < 0 || stock + (held.get(productId) ?? 0) !== expected) problems++;
	}
	for (let i = 0; i < orders.length; i += 32) {
		await Promise.all(
			orders.slice(i, i + 32).map(async order => {
				const payments = (await ok(api, `/api/payments?orderId=${order.id}`, token)).rows as Array<{ status: string; amount: number }>;
				const captured = payments.filter(payment => payment.status === "captured");
				if (order.status === "confirmed" && (captured.length !== 1 || captured[0].amount !== order.total)) problems++;
				if (order.status === "cancelled" && captured.length > 0) problems++;
			})
		);
	}
	return { orders: orders.length, problems };
}

async function seedOrders(api: Api, buyers: string[], productIds: string[], from: number, to: number, concurrency: number): Promise<void> {
	let next = from;
	const started = Date.now();
	const worker = async (w: number) => {
		for (let n = next++; n < to; n = next++) {
			const token = buyers[(n + w) % buyers.length];
			const items = [{ productId: productIds[n % productIds.length], quantity: 1 + (n % 3) }];
			const card = n % 97 === 0 ? DECLINED_TEST_CARD : APPROVED_TEST_CARD;
			const res = await api.post("/api/orders", { items, payment: { card } }, { token });
			if (res.status !== 201 && res.status !== 402) throw new Error(`order ${n}: ${res.status} ${JSON.stringify(res.body)}`);
			if (res.status === 201 && n % 50 === 0) {
				const cancel = await api.post(`/api/orders/${res.body.id}/cancel`, {}, { token });
				if (cancel.status !== 200) throw new Error(`cancel: ${cancel.status}`);
			}
			if (n % 5000 === 0 && n > from) process.stderr.write(`  ${n} orders (${Math.round((n - from) / ((Date.now() - started) / 1000))}/s)\n`);
		}
	};
	await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
	process.stderr.write(`  seeded ${to - from} orders in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

async function timed<T>(shop: ShopProcess, work: () => Promise<T>): Promise<{ seconds: number; cpu: number; result: T }> {
	const cpuBefore = cpuSeconds(shop.child.pid!);
	const started = process.hrtime.bigint();
	const result = await work();
	return { seconds: Number(process.hrtime.bigint() - started) / 1e9, cpu: cpuSeconds(shop.child.pid!) - cpuBefore, result };
}

async function main(): Promise<void> {
	const sizes = option("sizes", "5000,20000").split(",").map(Number);
	const oldUpTo = Number(option("old-up-to", "20000"));
	const concurrency = Number(option("concurrency", "32"));
	const shop = await startShop({
		env: { SEED_DEMO: "false", ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, LOGIN_RATE_LIMIT: "1000000", LOG_LEVEL: "warn" },
		timeoutMs: 60_000
	});
	try {
		const api = client(shop.baseUrl);
		const admin = (await api.post("/api/users/login", ADMIN)).body.token as string;
		const productIds: string[] = [];
		for (let i = 0; i < PRODUCTS; i++) {
			const res = await api.post("/api/products", { sku: `BOOKS-${i}`, name: `Product ${i}`, price: 100 + i, stock: STOCK }, { token: admin });
			productIds.push(res.body.id);
		}
		const expectedStock = new Map(productIds.map(id => [id, STOCK]));
		const buyers = await Promise.all(Array.from({ length: 16 }, () => registerUser(shop.baseUrl, "books").then(user => user.token)));
		const rows: string[] = [];
		let seeded = 0;
		for (const size of sizes) {
			await seedOrders(api, buyers, productIds, seeded, size, concurrency);
			seeded = size;
			const audit = () => auditBooks({ baseUrl: shop.baseUrl, adminToken: admin, expectedStock });
			const first = await timed(shop, audit);
			const second = await timed(shop, audit);
			if (first.result.problems.length > 0) throw new Error(`new audit: ${first.result.problems.slice(0, 5).join("; ")}`);
			const fresh = first.seconds <= second.seconds ? first : second;
			let line = `${size} orders (${first.result.orders.length} listed): new audit ${first.seconds.toFixed(2)} s, ${second.seconds.toFixed(2)} s (shop CPU ${fresh.cpu.toFixed(2)} s)`;
			if (size <= oldUpTo) {
				const old = await timed(shop, () => oldAudit(api, admin, expectedStock));
				if (old.result.problems > 0) throw new Error(`old audit: ${old.result.problems} problem(s)`);
				line += `; old audit ${old.seconds.toFixed(2)} s (shop CPU ${old.cpu.toFixed(2)} s); old ÷ new ${(old.seconds / fresh.seconds).toFixed(1)}`;
			}
			rows.push(line);
			process.stderr.write(`${line}\n`);
		}
		console.log(rows.join("\n"));
	} finally {
		await shop.stop();
	}
}

main().catch((err: unknown) => {
	console.error(err);
	process.exit(1);
});
