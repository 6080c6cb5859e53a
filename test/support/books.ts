/**
 * The invariants audit (lib/books.ts) read through the REST API only, as an auditor would: by the
 * benchmark after its load and by the tests after theirs. The REPL's `books` runs the same audit
 * over the broker.
 */
import { auditBooks as audit, listAllOrders, type AuditedOrder, type Books, type BooksSource } from "../../lib/books";
import { client } from "./shop";

export type { AuditedOrder, Books };

export interface AuditOptions {
	baseUrl: string;
	adminToken: string;
	/** Per product: its initial stock plus every restock. Products not listed are not audited. */
	expectedStock: Map<string, number>;
	/** See lib/books.ts. */
	settleWithinMs?: number;
}

type Api = ReturnType<typeof client>;

/** The shop's REST API as the audit's source, with `token`'s rights. */
export function restSource(api: Api, token: string): BooksSource {
	const ok = async (urlPath: string, withToken: boolean) => {
		const res = await api.get(urlPath, withToken ? { token } : undefined);
		if (res.status !== 200) throw new Error(`GET ${urlPath} answered ${res.status}: ${JSON.stringify(res.body)}`);
		return res.body;
	};
	return {
		productsPage: (page, pageSize) => ok(`/api/products?page=${page}&pageSize=${pageSize}`, false),
		async stockOf(productId) {
			const res = await api.get(`/api/products/${productId}`);
			if (res.status === 404) return null;
			if (res.status !== 200) throw new Error(`GET answered ${res.status}`);
			return res.body.stock as number;
		},
		exportPage: (after, limit) => ok(`/api/admin/orders/export?limit=${limit}${after === undefined ? "" : `&after=${encodeURIComponent(after)}`}`, true)
	};
}

/**
 * Every order the token may see, all pages of 100. Throws when a page does not answer 200, or when
 * the pages add up to another count than the listing's `total` (orders created while it paged).
 */
export function allOrders(api: Api, token: string): Promise<AuditedOrder[]> {
	return listAllOrders(async (page, pageSize) => {
		const res = await api.get(`/api/orders?page=${page}&pageSize=${pageSize}`, { token });
		if (res.status !== 200) throw new Error(`GET /api/orders answered ${res.status}: ${JSON.stringify(res.body)}`);
		return res.body;
	});
}

export function auditBooks(options: AuditOptions): Promise<Books> {
	return audit(restSource(client(options.baseUrl), options.adminToken), { expectedStock: options.expectedStock, settleWithinMs: options.settleWithinMs });
}
