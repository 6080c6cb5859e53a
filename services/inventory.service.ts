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
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DataTypes, Model, Op, UniqueConstraintError, type Sequelize, type WhereOptions } from "sequelize";
import { shopConfig } from "../lib/config";
import type { TxOptions } from "../lib/database";
import { DEMO_PRODUCTS } from "../lib/demo-catalogue";
import type { Page, Product, ProductPrice, ShopMeta, StockLine } from "../lib/types";
import { idRule, pageParams, pageWindow, toPage, type PageParams } from "../lib/params";
import { createDbMixin, type DbVars } from "../mixins/db.mixin";
import { alreadyExists, invalidState, notFound, outOfStock } from "../mixins/errors";

// --- Data ---------------------------------------------------------------------------------------

class ProductRow extends Model {
	declare id: string;
	declare sku: string;
	declare name: string;
	declare description: string;
	declare price: number;
	declare stock: number;
	declare createdAt: Date;
	declare updatedAt: Date;
}

export type HoldStatus = "held" | "committed" | "released";

/** The stock an order holds: one row per order, its lines inside. */
class HoldRow extends Model {
	declare orderId: string;
	declare status: HoldStatus;
	declare lines: StockLine[];
}

function defineModels(sequelize: Sequelize) {
	ProductRow.init(
		{
			id: { type: DataTypes.STRING(36), primaryKey: true },
			sku: { type: DataTypes.STRING(64), allowNull: false, unique: true },
			name: { type: DataTypes.STRING(200), allowNull: false },
			description: { type: DataTypes.TEXT, allowNull: false, defaultValue: "" },
			price: { type: DataTypes.BIGINT, allowNull: false },
			stock: { type: DataTypes.BIGINT, allowNull: false }
		},
		{ sequelize, tableName: "products", underscored: true }
	);
	HoldRow.init(
		{
			orderId: { type: DataTypes.STRING(36), primaryKey: true },
			status: { type: DataTypes.STRING(16), allowNull: false },
			lines: { type: DataTypes.JSON, allowNull: false }
		},
		{ sequelize, tableName: "holds", underscored: true }
	);
	return { Product: ProductRow, Hold: HoldRow };
}

type Models = ReturnType<typeof defineModels>;

const toProduct = (row: ProductRow): Product => ({
	id: row.id,
	sku: row.sku,
	name: row.name,
	description: row.description,
	price: Number(row.price),
	currency: "USD",
	stock: Number(row.stock),
	createdAt: row.createdAt.toISOString(),
	updatedAt: row.updatedAt.toISOString()
});

const byProductId = (lines: StockLine[]) => [...lines].sort((a, b) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0));

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
export interface ReserveParams {
	orderId: string;
	items: StockLine[];
}
export interface OrderIdParams {
	orderId: string;
}

/** Ten million dollars, in cents: a price above it is a typo, not a product. */
const MAX_PRICE = 1_000_000_000;
const MAX_STOCK = 1_000_000_000;

const nameRule = { type: "string", trim: true, min: 1, max: 200 } as const;
const descriptionRule = { type: "string", max: 5000 } as const;
const priceRule = { type: "number", integer: true, min: 0, max: MAX_PRICE } as const;

// --- Service ------------------------------------------------------------------------------------

interface InventoryMethods {
	findProduct(id: string): Promise<ProductRow>;
	productsChanged(ids: string[]): void;
	cleanCache(): void;
	seedDemoCatalogue(): Promise<void>;
}


interface InventorySettings extends ServiceSettingSchema {
	rest: string;
}

const InventoryService: ServiceSchema<InventorySettings, InventoryMethods, DbVars<Models>> = {
	name: "inventory",
	mixins: [createDbMixin("inventory", defineModels)],

	settings: {
		rest: "/products"
	},

	actions: {
		list: {
			rest: "GET /",
			cache: { keys: ["page", "pageSize", "search"] },
			params: {
				...pageParams,
				search: { type: "string", trim: true, max: 200, optional: true },
				$$strict: "remove"
			},
			async handler(ctx: Context<ListParams>): Promise<Page<Product>> {
				const { search } = ctx.params;
				const where: WhereOptions | undefined = search
					? { [Op.or]: [this.db.containsText("name", search), this.db.containsText("sku", search)] }
					: undefined;
				const { rows, count } = await this.models.Product.findAndCountAll({
					where,
					order: [["created_at", "ASC"], ["sku", "ASC"]],
					...pageWindow(ctx.params)
				});
				return toPage(rows.map(toProduct), count, ctx.params);
			}
		},

		get: {
			rest: "GET /:id",
			cache: { keys: ["id"] },
			params: { id: idRule },
			async handler(ctx: Context<{ id: string }>): Promise<Product> {
				return toProduct(await this.findProduct(ctx.params.id));
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
				const row = await this.db
					.write(tx => this.models.Product.create({ id: randomUUID(), sku, name, description: description ?? "", price, stock }, tx))
					.catch((err: unknown) => {
						if (err instanceof UniqueConstraintError) throw alreadyExists(`A product with sku '${sku}' already exists`, { field: "sku", sku });
						throw err;
					});
				this.productsChanged([row.id]);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/products/${row.id}`;
				return toProduct(row);
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
				const row = await this.db.transaction(async tx => {
					const product = await this.models.Product.findByPk(id, tx);
					if (!product) throw notFound("Product", { id });
					return product.update(changes, tx);
				});
				this.productsChanged([id]);
				return toProduct(row);
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
				const changed = await this.db.write(tx =>
					this.db.execute(
						"UPDATE products SET stock = stock + :quantity, updated_at = :now WHERE id = :id AND stock + :quantity <= :max",
						{ id, quantity, now: new Date(), max: MAX_STOCK },
						tx
					)
				);
				if (changed === 0) {
					await this.findProduct(id); // 404 when it does not exist
					throw invalidState(`Restocking would take the stock above ${MAX_STOCK}`, { id });
				}
				this.productsChanged([id]);
				this.logger.info(`Restocked ${id} by ${quantity}`);
				return toProduct(await this.findProduct(id));
			}
		},

		/** Prices and names of several products at once (for an order). Missing ids are simply absent. */
		getMany: {
			visibility: "public",
			params: { ids: { type: "array", items: idRule, min: 1, max: 100 } },
			async handler(ctx: Context<{ ids: string[] }>): Promise<ProductPrice[]> {
				// On every order's path: a plain SELECT, one placeholder per id.
				const ids = Object.fromEntries(ctx.params.ids.map((id, i) => [`id${i}`, id]));
				const rows = await this.db.select<ProductPrice>(
					`SELECT id, sku, name, price FROM products WHERE id IN (${Object.keys(ids).map(name => `:${name}`).join(", ")})`,
					ids
				);
				return rows.map(row => ({ ...row, price: Number(row.price) }));
			}
		},

		/**
		 * Takes every line's units out of `stock` for an order, all or nothing.
		 * Idempotent: a second call for the same order answers the first one's hold.
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
			async handler(ctx: Context<ReserveParams>): Promise<{ orderId: string; status: HoldStatus }> {
				const { orderId, items } = ctx.params;
				const status = await this.db.transaction(async tx => {
					const [existing] = await this.db.select<{ status: HoldStatus }>("SELECT status FROM holds WHERE order_id = :orderId", { orderId }, tx);
					if (existing) {
						if (existing.status === "released") throw invalidState("The stock of this order was already released", { orderId });
						return existing.status;
					}
					const short: Array<{ productId: string; requested: number; available: number }> = [];
					// Rows locked in one order (by id) in every transaction: no deadlock between two orders on PostgreSQL.
					for (const { productId, quantity } of byProductId(items)) {
						const taken = await this.db.execute(
							"UPDATE products SET stock = stock - :quantity, updated_at = :now WHERE id = :productId AND stock >= :quantity",
							{ productId, quantity, now: new Date() },
							tx
						);
						if (taken === 0) {
							const product = await this.models.Product.findByPk(productId, { attributes: ["stock"], ...tx });
							short.push({ productId, requested: quantity, available: product ? Number(product.stock) : 0 });
						}
					}
					// Throwing rolls back this job's savepoint: the lines already taken go back.
					if (short.length > 0) throw outOfStock({ products: short });
					const now = new Date();
					await this.db.execute(
						"INSERT INTO holds (order_id, status, lines, created_at, updated_at) VALUES (:orderId, 'held', :lines, :now, :now)",
						{ orderId, lines: items, now },
						tx
					);
					return "held" as const;
				}).finally(() => {
					// Also after a failed reserve: on SQLite a read during the attempt may have cached
					// the stock it took before rolling back.
					this.productsChanged(items.map(item => item.productId));
				});
				return { orderId, status };
			}
		},

		/** Marks an order's held stock as sold (the order is confirmed). Idempotent. */
		commit: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderIdParams>): Promise<{ orderId: string; status: HoldStatus }> {
				const { orderId } = ctx.params;
				const changed = await this.db.write(tx =>
					this.db.execute("UPDATE holds SET status = 'committed', updated_at = :now WHERE order_id = :orderId AND status = 'held'", { orderId, now: new Date() }, tx)
				);
				if (changed === 0) {
					// Already committed (a retry), or nothing to commit: say which.
					const hold = await this.models.Hold.findByPk(orderId);
					if (!hold) throw notFound("Stock hold", { orderId });
					if (hold.status === "released") throw invalidState("The stock of this order was already released", { orderId });
				}
				return { orderId, status: "committed" };
			}
		},

		/** Puts an order's units back on sale (cancelled or failed order). Idempotent; safe before a reserve. */
		release: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderIdParams>): Promise<{ orderId: string; status: HoldStatus }> {
				const { orderId } = ctx.params;
				const releasedLines = await this.db.transaction(async (tx: TxOptions) => {
					const now = new Date();
					// The one release that flips the hold gives the stock back: a concurrent second one
					// (another node, PostgreSQL) waits on the row and then changes nothing.
					const flipped = await this.db.execute(
						"UPDATE holds SET status = 'released', updated_at = :now WHERE order_id = :orderId AND status <> 'released'",
						{ orderId, now },
						tx
					);
					if (flipped === 0) {
						// No hold yet: leave a released one, so that a late reserve takes nothing.
						await this.db.execute(
							"INSERT INTO holds (order_id, status, lines, created_at, updated_at) VALUES (:orderId, 'released', :lines, :now, :now) ON CONFLICT (order_id) DO NOTHING",
							{ orderId, lines: [], now },
							tx
						);
						return [];
					}
					const hold = await this.models.Hold.findByPk(orderId, tx);
					for (const { productId, quantity } of byProductId(hold!.lines)) {
						await this.db.execute("UPDATE products SET stock = stock + :quantity, updated_at = :now WHERE id = :productId", { productId, quantity, now }, tx);
					}
					return hold!.lines;
				});
				if (releasedLines.length > 0) this.productsChanged(releasedLines.map(line => line.productId));
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
		async findProduct(id: string): Promise<ProductRow> {
			const row = await this.models.Product.findByPk(id);
			if (!row) throw notFound("Product", { id });
			return row;
		},

		/** Cleans this node's cache at once (read-your-writes) and tells the other nodes. */
		productsChanged(ids: string[]) {
			this.cleanCache();
			this.broker.broadcast("product.updated", { ids: [...new Set(ids)] });
		},

		cleanCache() {
			void this.broker.cacher?.clean("inventory.**");
		},

		/** A first start on an empty catalogue gets the demo products; safe when two nodes start at once. */
		async seedDemoCatalogue() {
			const created = await this.db.transaction(async tx => {
				if ((await this.models.Product.count(tx)) > 0) return 0;
				const rows = await this.models.Product.bulkCreate(
					DEMO_PRODUCTS.map(product => ({ ...product, id: randomUUID() })),
					{ ignoreDuplicates: true, ...tx }
				);
				return rows.length;
			});
			if (created > 0) this.logger.info(`Seeded the demo catalogue (${created} products).`);
		}
	},

	async started() {
		if (shopConfig().seedDemo) await this.seedDemoCatalogue();
	}
};

export default InventoryService;
