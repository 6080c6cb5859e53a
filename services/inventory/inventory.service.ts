/**
 * inventory: the product catalogue and its stock.
 *
 * Owns `inventory.sqlite`. `stock` is what can still be bought: a reservation takes units out of it
 * at once (an atomic conditional UPDATE, never read-then-write), and a hold per order remembers
 * them, so reserve, commit and release are idempotent per order id. A release that arrives before
 * its reservation leaves a "released" hold behind, so a late or retried reserve can never take stock
 * for an order that was already given up.
 */
import { randomUUID } from "node:crypto";
import type { Context, ServiceSchema } from "moleculer";
import { shopConfig } from "../../lib/config";
import { DEMO_PRODUCTS } from "../../lib/demo-catalogue";
import { alreadyExists, invalidState, notFound, outOfStock } from "../../lib/errors";
import { COMMIT_MANY_MAX, idRule, pageParams, pageWindow, toPage, type IdParams, type OrderRefParams, type PageParams } from "../../lib/params";
import type { OrderItem, Page, Product, ProductPrice, ShopMeta, StockLine } from "../../lib/types";
import { validatedKeygen } from "../../lib/cacher";
import { createDbMixin, type DbSettings, type DbVars } from "../../mixins/db.mixin";
import { migrations } from "./inventory.migrations";
import { InventoryStore, type HoldStatus } from "./inventory.store";

// --- Params -------------------------------------------------------------------------------------

export interface ListParams extends PageParams {
	search?: string;
}
export interface CreateParams {
	sku: string;
	name: string;
	description?: string;
	price: number;
	stock: number;
}
export interface UpdateParams {
	id: string;
	name?: string;
	description?: string;
	price?: number;
}
export interface RestockParams {
	id: string;
	quantity: number;
}
export interface ReserveParams extends OrderRefParams {
	items: StockLine[];
}
export interface GetManyParams {
	ids: string[];
}
export interface CommitManyParams {
	orderIds: string[];
}
/** What reserve, commit and release answer. */
export interface HoldAnswer {
	orderId: string;
	status: HoldStatus;
	/**
	 * reserve only: the order's lines with each product's sku, name and price when its units were
	 * taken (what the order is charged). Absent for a hold made before holds kept them.
	 */
	items?: OrderItem[];
}

/**
 * A search's ASCII letters in lower case, an empty one as none: what `listProducts` matches alike.
 * Only ASCII: SQLite's lower() folds nothing else, so "É" and "é" may find different products.
 */
const foldAsciiCase = (search: unknown) =>
	typeof search === "string" && search !== "" ? search.replace(/[A-Z]+/g, letters => letters.toLowerCase()) : undefined;

/** Ten million dollars, in cents: a price above it is a typo, not a product. */
const MAX_PRICE = 1_000_000_000;
const MAX_STOCK = 1_000_000_000;

const nameRule = { type: "string", trim: true, min: 1, max: 200 } as const;
const descriptionRule = { type: "string", max: 5000 } as const;
const priceRule = { type: "number", integer: true, min: 0, max: MAX_PRICE } as const;

// --- Service ------------------------------------------------------------------------------------

interface InventoryMethods {
	findProduct(id: string): Promise<Product>;
	productsChanged(ids: string[]): void;
	cleanCache(): void;
	seedDemoCatalogue(): Promise<void>;
}

interface InventorySettings extends DbSettings {
	rest: string;
	/** SEED_DEMO: an empty catalogue gets the demo products at start. */
	seedDemo: boolean;
}

const InventoryService: ServiceSchema<InventorySettings, InventoryMethods, DbVars<InventoryStore>> = {
	name: "inventory",
	mixins: [createDbMixin({ migrations, createStore: db => new InventoryStore(db) })],

	settings: {
		db: shopConfig().dbUrl("inventory"),
		rest: "/products",
		seedDemo: shopConfig().seedDemo
	},

	actions: {
		list: {
			rest: "GET /",
			// Keyed on the params as validated (page=01 is page=1, the search trimmed), and on the search's ASCII
			// letters in one case: the search ignores their case on every dialect (lower() on both sides).
			cache: { keys: ["page", "pageSize", "search"], keygen: validatedKeygen(({ search, ...params }) => ({ ...params, search: foldAsciiCase(search) })) },
			params: {
				...pageParams,
				search: { type: "string", trim: true, max: 200, optional: true },
				$$strict: "remove"
			},
			async handler(ctx: Context<ListParams>): Promise<Page<Product>> {
				const { rows, total } = await this.store.listProducts({ search: ctx.params.search, ...pageWindow(ctx.params) });
				return toPage(rows, total, ctx.params);
			}
		},

		get: {
			rest: "GET /:id",
			cache: { keys: ["id"] },
			params: { id: idRule },
			handler(ctx: Context<IdParams>): Promise<Product> {
				return this.findProduct(ctx.params.id);
			}
		},

		create: {
			rest: "POST /",
			auth: "admin",
			retryPolicy: { enabled: false },
			params: {
				sku: { type: "string", trim: true, min: 1, max: 64, pattern: /^[\w.-]+$/, patternFlags: "" },
				name: nameRule,
				description: { ...descriptionRule, optional: true },
				price: priceRule,
				stock: { type: "number", integer: true, min: 0, max: MAX_STOCK },
				$$strict: "remove"
			},
			async handler(ctx: Context<CreateParams, ShopMeta>): Promise<Product> {
				// An optional field sent as null passes the validator: it means "not given".
				const { sku, name, description, price, stock } = ctx.params;
				const product = await this.store.insertProduct({ id: randomUUID(), sku, name, description: description ?? "", price, stock });
				if (!product) throw alreadyExists(`A product with sku '${sku}' already exists`, { field: "sku", sku });
				this.productsChanged([product.id]);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `${this.settings.rest}/${product.id}`;
				return product;
			}
		},

		update: {
			rest: "PATCH /:id",
			auth: "admin",
			params: {
				id: idRule,
				name: { ...nameRule, optional: true },
				description: { ...descriptionRule, optional: true },
				price: { ...priceRule, optional: true },
				$$strict: "remove"
			},
			async handler(ctx: Context<UpdateParams>): Promise<Product> {
				const { id, ...given } = ctx.params;
				// An optional field sent as null passes the validator: it means "not given" (the columns are NOT NULL).
				const changes = Object.fromEntries(Object.entries(given).filter(([, value]) => value != null));
				const product = await this.store.updateProduct(id, changes);
				if (!product) throw notFound("Product", { id });
				this.productsChanged([id]);
				return product;
			}
		},

		restock: {
			rest: "POST /:id/restock",
			auth: "admin",
			// Not idempotent: a retried restock would add the units twice.
			retryPolicy: { enabled: false },
			params: {
				id: idRule,
				quantity: { type: "number", integer: true, min: 1, max: MAX_STOCK },
				$$strict: "remove"
			},
			async handler(ctx: Context<RestockParams>): Promise<Product> {
				const { id, quantity } = ctx.params;
				if (!(await this.store.restock(id, quantity, MAX_STOCK))) {
					await this.findProduct(id); // 404 when it does not exist
					throw invalidState(`Restocking would take the stock above ${MAX_STOCK}`, { id });
				}
				this.productsChanged([id]);
				this.logger.info(`Restocked ${id} by ${quantity}`);
				return this.findProduct(id);
			}
		},

		/** Prices and names of several products at once (for an order). Missing ids are simply absent. */
		getMany: {
			visibility: "public",
			params: { ids: { type: "array", items: idRule, min: 1, max: 100 } },
			handler(ctx: Context<GetManyParams>): Promise<ProductPrice[]> {
				return this.store.pricesOf(ctx.params.ids);
			}
		},

		/**
		 * Takes every line's units out of `stock` for an order, all or nothing, and answers the lines
		 * priced as they were taken. Idempotent: a second call for the same order answers the first one's hold.
		 */
		reserve: {
			visibility: "public",
			params: {
				orderId: idRule,
				items: {
					type: "array",
					min: 1,
					max: 50,
					items: { type: "object", props: { productId: idRule, quantity: { type: "number", integer: true, min: 1 } } }
				}
			},
			async handler(ctx: Context<ReserveParams>): Promise<HoldAnswer> {
				const { orderId, items } = ctx.params;
				const reserved = await this.store.reserve(orderId, items).finally(() => {
					// Also after a failed reserve: on SQLite a read during the attempt may have cached
					// the stock it took before rolling back.
					this.productsChanged(items.map(item => item.productId));
				});
				if ("shortage" in reserved) throw outOfStock({ products: reserved.shortage });
				if (reserved.status === "released") throw invalidState("The stock of this order was already released", { orderId });
				return reserved.items ? { orderId, status: reserved.status, items: reserved.items } : { orderId, status: reserved.status };
			}
		},

		/**
		 * Marks an order's held stock as sold (the order is confirmed). Idempotent. Orders nodes of this
		 * version send `commitMany`; this one stays for an orders node of the previous version during a
		 * rolling upgrade.
		 */
		commit: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderRefParams>): Promise<HoldAnswer> {
				const { orderId } = ctx.params;
				const status = await this.store.commit(orderId);
				if (!status) throw notFound("Stock hold", { orderId });
				if (status === "released") throw invalidState("The stock of this order was already released", { orderId });
				return { orderId, status };
			}
		},

		/**
		 * `commit` of many confirmed orders at once (the orders service gathers them): holds still held
		 * become committed, the others are left as they are. Answers how many changed.
		 */
		commitMany: {
			visibility: "public",
			params: { orderIds: { type: "array", items: idRule, min: 1, max: COMMIT_MANY_MAX } },
			async handler(ctx: Context<CommitManyParams>): Promise<{ committed: number }> {
				return { committed: await this.store.commitMany([...new Set(ctx.params.orderIds)]) };
			}
		},

		/** Puts an order's units back on sale (cancelled or failed order). Idempotent; safe before a reserve. */
		release: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderRefParams>): Promise<HoldAnswer> {
				const { orderId } = ctx.params;
				const released = await this.store.release(orderId);
				if (released.length > 0) this.productsChanged(released.map(line => line.productId));
				return { orderId, status: "released" };
			}
		}
	},

	events: {
		/** Products changed on another inventory node: drop what this node cached (our own changes cleaned it already). */
		"product.updated"(ctx: Context) {
			if (ctx.nodeID !== this.broker.nodeID) this.cleanCache();
		}
	},

	methods: {
		async findProduct(id: string): Promise<Product> {
			const product = await this.store.findProduct(id);
			if (!product) throw notFound("Product", { id });
			return product;
		},

		/** Cleans this node's cache at once (read-your-writes) and tells the other nodes. */
		productsChanged(ids: string[]) {
			this.cleanCache();
			// Fire and forget: a node that misses it still drops the entry at the cache's TTL.
			void this.broker.broadcast("product.updated", { ids: [...new Set(ids)] });
		},

		cleanCache() {
			void this.broker.cacher?.clean("inventory.**");
		},

		/** A first start on an empty catalogue gets the demo products; safe when two nodes start at once. */
		async seedDemoCatalogue() {
			const created = await this.store.seedIfEmpty(DEMO_PRODUCTS.map(product => ({ ...product, id: randomUUID() })));
			if (created > 0) this.logger.info(`Seeded the demo catalogue (${created} products).`);
		}
	},

	async started() {
		if (this.settings.seedDemo) await this.seedDemoCatalogue();
	}
};

export default InventoryService;
