/**
 * The invariants of the contract (shared/API.md), checked from outside through the REST API only,
 * as an auditor would: by the benchmark after its load and by the tests after theirs.
 *
 *  1. stock never negative; initial stock + restocks = stock + units in confirmed + pending orders;
 *  2. every confirmed order has exactly one captured payment of its total, and no cancelled order
 *     keeps a captured payment.
 */
import { client } from "./shop";

export interface AuditedOrder {
	id: string;
	userId: string;
	status: "pending" | "confirmed" | "cancelled";
	total: number;
	cancelReason: string | null;
	items: Array<{ productId: string; quantity: number; unitPrice: number }>;
	createdAt: string;
	updatedAt: string;
}

export interface Books {
	orders: AuditedOrder[];
	/** Each broken rule, in words; empty when the books balance. */
	problems: string[];
}

export interface AuditOptions {
	baseUrl: string;
	adminToken: string;
	/** Per product: its initial stock plus every restock. Products not listed are not audited. */
	expectedStock: Map<string, number>;
	/**
	 * Wait this long (after a first listing) for pending orders to settle by themselves; a pending
	 * order left is a problem. Audit a quiet shop: a listing made while orders are created can skip
	 * or repeat some (it pages with OFFSET).
	 */
	settleWithinMs?: number;
}

/**
 * Every order the token may see, all pages of 100. Throws when a page does not answer 200, or when
 * the pages add up to another count than the listing's `total` (orders created while it paged).
 */
export async function allOrders(api: ReturnType<typeof client>, token: string): Promise<AuditedOrder[]> {
	const orders: AuditedOrder[] = [];
	for (let page = 1; ; page++) {
		const res = await api.get(`/api/orders?page=${page}&pageSize=100`, { token });
		if (res.status !== 200) throw new Error(`GET /api/orders?page=${page} answered ${res.status}: ${JSON.stringify(res.body)}`);
		orders.push(...res.body.rows);
		if (page >= res.body.totalPages) {
			if (orders.length !== res.body.total)
				throw new Error(`GET /api/orders listed ${orders.length} orders on ${page} page(s) for a total of ${res.body.total}`);
			return orders;
		}
	}
}

export async function auditBooks(options: AuditOptions): Promise<Books> {
	const api = client(options.baseUrl);
	const token = options.adminToken;
	// Listing every order takes a while (pages of 100) and is no snapshot: the wait for pending orders
	// to settle counts from the end of the first listing, so a slow listing still gets a second look.
	const patience = options.settleWithinMs ?? 0;
	const listing = async (deadline: number): Promise<AuditedOrder[]> => {
		for (;;) {
			try {
				return await allOrders(api, token);
			} catch (err) {
				// A node that just died may still be in the gateway's registry for a few seconds.
				if (Date.now() >= deadline) throw err;
				await new Promise(resolve => setTimeout(resolve, 500));
			}
		}
	};
	let orders = await listing(Date.now() + patience);
	const deadline = Date.now() + patience;
	while (orders.some(order => order.status === "pending") && Date.now() < deadline) {
		await new Promise(resolve => setTimeout(resolve, 500));
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
	for (const [productId, expected] of options.expectedStock) {
		const res = await api.get(`/api/products/${productId}`);
		if (res.status !== 200) {
			problems.push(`product ${productId}: GET answered ${res.status}`);
			continue;
		}
		const stock = res.body.stock as number;
		if (stock < 0) problems.push(`product ${productId}: negative stock ${stock}`);
		if (stock + (held.get(productId) ?? 0) !== expected) {
			problems.push(`product ${productId}: stock ${stock} + units in confirmed and pending orders ${held.get(productId) ?? 0} != ${expected}`);
		}
	}

	for (let i = 0; i < orders.length; i += 32) {
		await Promise.all(
			orders.slice(i, i + 32).map(async order => {
				const res = await api.get(`/api/payments?orderId=${order.id}`, { token });
				const captured = (res.body.rows as Array<{ status: string; amount: number }>).filter(payment => payment.status === "captured");
				if (order.status === "confirmed" && (captured.length !== 1 || captured[0].amount !== order.total)) {
					problems.push(
						`order ${order.id}: confirmed with ${captured.length} captured payment(s) (${captured.map(p => p.amount).join(", ")} for a total of ${order.total})`
					);
				}
				if (order.status === "cancelled" && captured.length > 0) problems.push(`order ${order.id}: cancelled but a payment is still captured`);
			})
		);
	}
	return { orders, problems };
}
