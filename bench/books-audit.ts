/**
 * How long the books audit takes on a shop with many orders: the audit as it was (every order paged
 * with OFFSET through `GET /api/orders`, then one `GET /api/payments` per order, one `GET` per
 * product) against the audit of lib/books.ts (the admin export's keyset pages, each with its
 * payments, and the catalogue's pages), both over REST on the same shop, one after the other.
 *
 *   npm run build && node dist/bench/books-audit.js [--sizes 5000,20000] [--old-up-to 20000] [--concurrency 32] [--direct] [--data-dir DIR]
 *
 * Starts a shop (SQLite, one process), seeds 100 products, then places orders as fast as it can
 * (1 in 50 cancelled by its buyer, 1 in 97 declined) up to each size, and times both audits there.
 * Also reports the CPU seconds (utime + stime) the shop process and this one spent on each audit.
 * `--direct` seeds orders beyond the first size straight into the stopped shop's SQLite files,
 * through the services' own stores (stock reserved and committed, order confirmed, payment captured;
 * 1 in 50 cancelled with its payment refunded and no stock held): the same rows the shop writes,
 * in seconds instead of minutes, for audits of 100k orders.
 * `--data-dir` keeps the shop's data there, and a later run on the same directory starts from the
 * orders already in it (the sizes count them).
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import { openDatabase } from "../lib/db/database";
import type { OrderItem } from "../lib/types";
import { InventoryStore } from "../services/inventory/inventory.store";
import { OrdersStore } from "../services/orders/orders.store";
import { PaymentsStore } from "../services/payments/payments.store";
import { auditBooks } from "../test/support/books";
import { client, registerUser, startShop, tempDataDir, type ShopProcess } from "../test/support/shop";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD } from "../lib/cards";
import { cpuTicks, CLK_TCK } from "./measure";
import { BENCH_ENV, benchAdminToken, option } from "./setup";

const PRODUCTS = 100;
const STOCK = 10_000_000;

type Api = ReturnType<typeof client>;

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

interface Timing<T> {
	seconds: number;
	/** CPU seconds of the shop process. */
	cpu: number;
	/** CPU seconds of this process (the client: requests and JSON). */
	clientCpu: number;
	result: T;
}

/** Orders `from`..`to` written straight into the shop's files (the shop stopped), with the services' stores. */
async function seedDirect(
	dataDir: string,
	products: Array<{ id: string; sku: string; name: string; price: number }>,
	userId: string,
	from: number,
	to: number
) {
	const started = Date.now();
	const logger = new ServiceBroker({ logger: false }).getLogger("seed");
	const open = (service: string) => openDatabase(`sqlite:${path.join(dataDir, `${service}.sqlite`)}?synchronous=normal`, logger);
	const [inventoryDb, ordersDb, paymentsDb] = await Promise.all([open("inventory"), open("orders"), open("payments")]);
	const inventory = new InventoryStore(inventoryDb);
	const orders = new OrdersStore(ordersDb);
	const payments = new PaymentsStore(paymentsDb);
	try {
		const one = async (n: number) => {
			const product = products[n % products.length];
			const items: OrderItem[] = [{ productId: product.id, sku: product.sku, name: product.name, quantity: 1 + (n % 3), unitPrice: product.price }];
			const total = items[0].quantity * items[0].unitPrice;
			const id = randomUUID();
			const cancelled = n % 50 === 0;
			if (!cancelled) {
				const held = await inventory.reserve(id, [{ productId: product.id, quantity: items[0].quantity }]);
				if (!("status" in held)) throw new Error(`order ${n}: out of stock`);
				await inventory.commit(id);
			}
			await payments.capture({ id: randomUUID(), orderId: id, userId, amount: total, status: "captured", cardLast4: "4242" });
			if (cancelled) await payments.refund(id);
			const at = new Date().toISOString();
			await orders.insert({
				id,
				userId,
				status: cancelled ? "cancelled" : "confirmed",
				items,
				total,
				cancelReason: cancelled ? "cancelled_by_user" : null,
				idempotencyKey: null,
				firstResponse: 201,
				ownerNode: "seed",
				attendedAt: at,
				createdAt: at,
				updatedAt: at
			});
		};
		for (let start = from; start < to; start += 512) {
			await Promise.all(Array.from({ length: Math.min(512, to - start) }, (_, i) => one(start + i)));
			if ((start - from) % 20_480 === 0 && start > from) process.stderr.write(`  ${start} orders\n`);
		}
	} finally {
		await Promise.all([inventoryDb.close(), ordersDb.close(), paymentsDb.close()]);
	}
	process.stderr.write(`  seeded ${to - from} orders straight into the files in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

async function timed<T>(shop: ShopProcess, work: () => Promise<T>): Promise<Timing<T>> {
	const cpuBefore = cpuTicks(shop.child.pid) / CLK_TCK;
	const clientBefore = process.cpuUsage();
	const started = process.hrtime.bigint();
	const result = await work();
	const client = process.cpuUsage(clientBefore);
	return {
		seconds: Number(process.hrtime.bigint() - started) / 1e9,
		cpu: cpuTicks(shop.child.pid) / CLK_TCK - cpuBefore,
		clientCpu: (client.user + client.system) / 1e6,
		result
	};
}

const cpuOf = (timing: Timing<unknown>) => `CPU shop ${timing.cpu.toFixed(2)} s, client ${timing.clientCpu.toFixed(2)} s`;

async function main(): Promise<void> {
	const sizes = option("--sizes", "5000,20000").split(",").map(Number);
	const oldUpTo = Number(option("--old-up-to", "20000"));
	const concurrency = Number(option("--concurrency", "32"));
	const direct = process.argv.includes("--direct");
	const dataDir = option("--data-dir", "") || tempDataDir("shop-books-audit-");
	const start = () =>
		startShop({
			dataDir,
			env: BENCH_ENV,
			timeoutMs: 60_000
		});
	let shop = await start();
	try {
		let api = client(shop.baseUrl);
		let admin = await benchAdminToken(shop.baseUrl);
		type Listed = { id: string; sku: string; name: string; price: number };
		const products: Listed[] = (await ok(api, `/api/products?pageSize=100&search=BOOKS-`)).rows;
		for (let i = products.length; i < PRODUCTS; i++) {
			const res = await api.post("/api/products", { sku: `BOOKS-${i}`, name: `Product ${i}`, price: 100 + i, stock: STOCK }, { token: admin });
			if (res.status !== 201) throw new Error(`creating product BOOKS-${i} answered ${res.status}: ${JSON.stringify(res.body)}`);
			products.push(res.body);
		}
		const productIds = products.map(product => product.id);
		const expectedStock = new Map(productIds.map(id => [id, STOCK]));
		const buyers = await Promise.all(Array.from({ length: 16 }, () => registerUser(shop.baseUrl, "books")));
		const rows: string[] = [];
		let seeded = (await ok(api, "/api/orders?pageSize=1", admin)).total as number;
		for (const [index, size] of sizes.entries()) {
			if (size > seeded && direct && index > 0) {
				await shop.stop();
				await seedDirect(dataDir, products, buyers[0].id, seeded, size);
				shop = await start();
				api = client(shop.baseUrl);
				admin = await benchAdminToken(shop.baseUrl);
			} else if (size > seeded) {
				await seedOrders(
					api,
					buyers.map(buyer => buyer.token),
					productIds,
					seeded,
					size,
					concurrency
				);
			}
			seeded = Math.max(seeded, size);
			const audit = () => auditBooks({ baseUrl: shop.baseUrl, adminToken: admin, expectedStock });
			const first = await timed(shop, audit);
			const second = await timed(shop, audit);
			if (first.result.problems.length > 0) throw new Error(`new audit: ${first.result.problems.slice(0, 5).join("; ")}`);
			const fresh = first.seconds <= second.seconds ? first : second;
			let line = `${first.result.orders.length} orders: new audit ${first.seconds.toFixed(2)} s, ${second.seconds.toFixed(2)} s (${cpuOf(fresh)})`;
			if (size <= oldUpTo) {
				const old = await timed(shop, () => oldAudit(api, admin, expectedStock));
				if (old.result.problems > 0) throw new Error(`old audit: ${old.result.problems} problem(s)`);
				line += `; old audit ${old.seconds.toFixed(2)} s (${cpuOf(old)}); old ÷ new ${(old.seconds / fresh.seconds).toFixed(1)}`;
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
