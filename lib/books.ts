/**
 * The invariants of the contract (shared/API.md), audited as an operator would, from whatever can
 * read the shop as an admin: the REST API (the tests and the benchmark, test/support/books.ts) or the
 * broker itself (the REPL's `books` command, lib/repl/books.ts). One audit, two ways of reading.
 *
 *  1. stock never negative; initial stock + restocks = stock + units in confirmed + pending orders
 *     (only when the caller knows the initial stock and restocks: `expectedStock`);
 *  2. every confirmed order has exactly one captured payment of its total, and no cancelled order
 *     keeps a captured payment.
 */
import { ORDERS_PER_CALL_MAX } from "./params";
import type { OrderStatus } from "./types";

export interface AuditedOrder {
	id: string;
	userId: string;
	status: OrderStatus;
	total: number;
	cancelReason: string | null;
	items: Array<{ productId: string; quantity: number; unitPrice: number }>;
	createdAt: string;
	updatedAt: string;
	/** The orders node that holds it (admins see it). */
	ownerNode?: string;
}

/** One page of a listing, as the shop's list actions answer it. */
export interface AuditPage<T> {
	rows: T[];
	total: number;
	totalPages: number;
}

/** An order with its payments, as the admin export lists it. */
export interface ExportedOrder extends AuditedOrder {
	payments: Array<{ status: string; amount: number }>;
}

/** One page of the admin export (`GET /api/admin/orders/export`, `orders.export`): `next` is null on the last. */
export interface ExportPage {
	rows: ExportedOrder[];
	next: string | null;
}

/** How the audit reads the shop, as an admin. A read that fails throws. */
export interface BooksSource {
	/** A page of the admin export: every order with its payments, oldest first, after the cursor (undefined: from the first). */
	exportPage(after: string | undefined, limit: number): Promise<ExportPage>;
	/** A page (from 1) of the catalogue. */
	productsPage(page: number, pageSize: number): Promise<AuditPage<{ id: string; stock: number }>>;
	/** A product's current stock; null when it does not exist. */
	stockOf(productId: string): Promise<number | null>;
}

export interface AuditOptions {
	/** Per product: its initial stock plus every restock. Without it, stock is checked only for being negative, on every product. */
	expectedStock?: Map<string, number>;
	/**
	 * Wait this long (after a first listing) for pending orders to settle by themselves; a pending
	 * order left is a problem. The listing (the admin export, keyset paged) is complete while orders
	 * are created: every order that existed when it began is in it once. Stock is read after it,
	 * though, and each order's payments with its page: rule 1 is exact only on a quiet shop, and an
	 * order cancelled between those two reads could look confirmed without a captured payment.
	 */
	settleWithinMs?: number;
}

/** What was looked at, for a summary (the REPL's table). */
export interface BooksSummary {
	orders: Record<OrderStatus, number>;
	productsChecked: number;
	/** Rule 1's sum was checked (expectedStock given). */
	stockConservation: boolean;
	paymentsChecked: number;
}

export interface Books {
	orders: ExportedOrder[];
	/** Each broken rule, in words; empty when the books balance. */
	problems: string[];
	summary: BooksSummary;
}

const PAGE_SIZE = 100;

async function allPages<T>(read: (page: number, pageSize: number) => Promise<AuditPage<T>>, what: string): Promise<T[]> {
	const rows: T[] = [];
	for (let page = 1; ; page++) {
		const answer = await read(page, PAGE_SIZE);
		rows.push(...answer.rows);
		if (page >= answer.totalPages) {
			if (rows.length !== answer.total) throw new Error(`${what}: listed ${rows.length} on ${page} page(s) for a total of ${answer.total}`);
			return rows;
		}
	}
}

/** Every order of a paged listing (`ordersPage`: page from 1, newest first); throws when the pages add up to another count than the listing's total (orders created while it paged). */
export function listAllOrders(ordersPage: (page: number, pageSize: number) => Promise<AuditPage<AuditedOrder>>): Promise<AuditedOrder[]> {
	return allPages(ordersPage, "orders");
}

/** Every order with its payments, through the admin export: every page until `next` is null. */
export async function exportAllOrders(source: BooksSource): Promise<ExportedOrder[]> {
	const rows: ExportedOrder[] = [];
	let after: string | undefined;
	do {
		// The export's largest page: 100k orders are 100 requests.
		const page = await source.exportPage(after, ORDERS_PER_CALL_MAX);
		rows.push(...page.rows);
		after = page.next ?? undefined;
	} while (after !== undefined);
	return rows;
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/**
 * The stock of every product in the catalogue's pages (ten requests for 1,000 products); a wanted
 * product the pages missed (one created meanwhile shifts them) is asked for by its id.
 */
async function stocks(source: BooksSource, wanted: Iterable<string>): Promise<Map<string, number | Error | null>> {
	const found = new Map<string, number | Error | null>();
	try {
		for (let page = 1; ; page++) {
			const answer = await source.productsPage(page, PAGE_SIZE);
			for (const product of answer.rows) found.set(product.id, product.stock);
			if (page >= answer.totalPages) break;
		}
	} catch {
		// The catalogue did not answer a page: each product the pages missed is asked for below, and a failure is its problem.
	}
	for (const productId of wanted) {
		if (found.has(productId)) continue;
		try {
			found.set(productId, await source.stockOf(productId));
		} catch (err) {
			found.set(productId, err as Error);
		}
	}
	return found;
}

export async function auditBooks(source: BooksSource, options: AuditOptions = {}): Promise<Books> {
	// The wait for pending orders to settle counts from the end of the first listing, so a slow
	// listing still gets a second look.
	const patience = options.settleWithinMs ?? 0;
	const listing = async (deadline: number): Promise<ExportedOrder[]> => {
		for (;;) {
			try {
				return await exportAllOrders(source);
			} catch (err) {
				// A node that just died may still be in the caller's registry for a few seconds.
				if (Date.now() >= deadline) throw err;
				await sleep(500);
			}
		}
	};
	let orders = await listing(Date.now() + patience);
	const deadline = Date.now() + patience;
	while (orders.some(order => order.status === "pending") && Date.now() < deadline) {
		await sleep(500);
		orders = await listing(deadline);
	}

	const problems: string[] = [];
	if (options.settleWithinMs !== undefined) {
		for (const order of orders.filter(order => order.status === "pending")) problems.push(`order ${order.id}: still pending`);
	}

	const held = new Map<string, number>();
	for (const order of orders.filter(order => order.status !== "cancelled")) {
		for (const item of order.items) held.set(item.productId, (held.get(item.productId) ?? 0) + item.quantity);
	}
	let productsChecked = 0;
	if (options.expectedStock) {
		const stockNow = await stocks(source, options.expectedStock.keys());
		for (const [productId, expected] of options.expectedStock) {
			const stock = stockNow.get(productId) ?? null;
			if (stock instanceof Error) {
				problems.push(`product ${productId}: ${stock.message}`);
				continue;
			}
			if (stock === null) {
				problems.push(`product ${productId}: not found`);
				continue;
			}
			productsChecked++;
			if (stock < 0) problems.push(`product ${productId}: negative stock ${stock}`);
			if (stock + (held.get(productId) ?? 0) !== expected) {
				problems.push(`product ${productId}: stock ${stock} + units in confirmed and pending orders ${held.get(productId) ?? 0} != ${expected}`);
			}
		}
	} else {
		for (const product of await allPages((page, size) => source.productsPage(page, size), "products")) {
			productsChecked++;
			if (product.stock < 0) problems.push(`product ${product.id}: negative stock ${product.stock}`);
		}
	}

	for (const order of orders) {
		const captured = order.payments.filter(payment => payment.status === "captured");
		if (order.status === "confirmed" && (captured.length !== 1 || captured[0].amount !== order.total)) {
			problems.push(
				`order ${order.id}: confirmed with ${captured.length} captured payment(s) (${captured.map(p => p.amount).join(", ")} for a total of ${order.total})`
			);
		}
		if (order.status === "cancelled" && captured.length > 0) problems.push(`order ${order.id}: cancelled but a payment is still captured`);
	}
	const count = (status: OrderStatus) => orders.filter(order => order.status === status).length;
	return {
		orders,
		problems,
		summary: {
			orders: { pending: count("pending"), confirmed: count("confirmed"), cancelled: count("cancelled") },
			productsChecked,
			stockConservation: options.expectedStock !== undefined,
			paymentsChecked: orders.length
		}
	};
}
