/**
 * The inventory database: the only code that knows its tables (see inventory.migrations.ts).
 *
 * Stock moves only by atomic conditional UPDATEs (never read-then-write), and every product row an
 * order touches is locked in id order, so two concurrent orders cannot deadlock on PostgreSQL.
 * Reserve and release of one order run one after the other (`holdLock`, as payments serialises
 * capture and void): otherwise, on PostgreSQL, a release could miss a reservation not yet committed
 * and leave its stock held for a cancelled order, or a reserve could trip over a release's row.
 */
import { placeholders, type Database, type Sql } from "../../lib/db/database";
import type { OrderItem, Product, ProductPrice, StockLine } from "../../lib/types";

/** A `products` row as stored. */
interface ProductRow {
	id: string;
	sku: string;
	name: string;
	description: string;
	price: number;
	stock: number;
	created_at: string;
	updated_at: string;
}

/** A `holds` row as stored. */
interface HoldRow {
	order_id: string;
	status: HoldStatus;
	/** The order's items (OrderItem[], priced when their units were taken) as JSON; holds made before prices were kept: StockLine[]. */
	lines: string;
	created_at: string;
	updated_at: string;
}

export type HoldStatus = "held" | "committed" | "released";

/** A line an order asked for more of than there is. */
export interface Shortage {
	productId: string;
	requested: number;
	available: number;
}

/** What a reservation did: the order's hold (with the lines as priced when taken), or the lines it could not have (nothing taken). */
export type ReserveResult = { status: HoldStatus; items?: OrderItem[] } | { shortage: Shortage[] };

export type NewProduct = Pick<Product, "id" | "sku" | "name" | "description" | "price" | "stock">;
export type ProductChanges = Partial<Pick<Product, "name" | "description" | "price">>;

const toProduct = (row: ProductRow): Product => ({
	id: row.id,
	sku: row.sku,
	name: row.name,
	description: row.description,
	price: row.price,
	currency: "USD",
	stock: row.stock,
	createdAt: row.created_at,
	updatedAt: row.updated_at
});

const byProductId = <T extends StockLine>(lines: T[]): T[] => [...lines].sort((a, b) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0));

/** Thrown inside a reservation's transaction to roll back the lines already taken. */
class ShortageFound extends Error {
	constructor(readonly shortage: Shortage[]) {
		super("shortage");
	}
}

const now = () => new Date().toISOString();

/** Takes `$1` units of product `$3` (at time `$2`) if it has them. */
const TAKE_STOCK = "UPDATE products SET stock = stock - $1, updated_at = $2 WHERE id = $3 AND stock >= $1";
/** A new hold; its lines are the order's items as priced when their units were taken. */
const INSERT_HOLD = "INSERT INTO holds (order_id, status, lines, created_at, updated_at) VALUES ($1, 'held', $2, $3, $3)";
const heldItem = (product: ProductPrice, quantity: number): OrderItem => ({
	productId: product.id,
	sku: product.sku,
	name: product.name,
	quantity,
	unitPrice: product.price
});

/** The lock reserve and release of one order take first (PostgreSQL's advisory lock; SQLite's writers already run one at a time). */
const holdLock = (orderId: string) => `hold:${orderId}`;

/** Adds a product unless its id or sku is taken (then it changes nothing). */
const INSERT_PRODUCT =
	"INSERT INTO products (id, sku, name, description, price, stock, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING";
const productValues = (p: NewProduct, at: string) => [p.id, p.sku, p.name, p.description, p.price, p.stock, at];

export class InventoryStore {
	constructor(private readonly db: Database) {}

	async listProducts(query: { search?: string; limit: number; offset: number }): Promise<{ rows: Product[]; total: number }> {
		const where = query.search ? `WHERE ${this.db.containsText("name", "$1")} OR ${this.db.containsText("sku", "$1")}` : "";
		const filter = query.search ? [query.search] : [];
		const next = filter.length;
		const [rows, counted] = await Promise.all([
			this.db.all<ProductRow>(`SELECT * FROM products ${where} ORDER BY created_at, sku LIMIT $${next + 1} OFFSET $${next + 2}`, [
				...filter,
				query.limit,
				query.offset
			]),
			this.db.one<{ total: number }>(`SELECT COUNT(*) AS total FROM products ${where}`, filter)
		]);
		return { rows: rows.map(toProduct), total: counted?.total ?? 0 };
	}

	async findProduct(id: string): Promise<Product | undefined> {
		const row = await this.db.one<ProductRow>("SELECT * FROM products WHERE id = $1", [id]);
		return row && toProduct(row);
	}

	/** Adds a product; undefined when its sku is taken. */
	async insertProduct(product: NewProduct): Promise<Product | undefined> {
		const at = now();
		const added = await this.db.write(sql => sql.run(INSERT_PRODUCT, productValues(product, at)));
		return added === 1 ? { ...product, currency: "USD", createdAt: at, updatedAt: at } : undefined;
	}

	/** Changes the given fields; undefined when there is no such product. */
	async updateProduct(id: string, changes: ProductChanges): Promise<Product | undefined> {
		// Column names come from this fixed list, values are bound.
		const columns = (["name", "description", "price"] as const).filter(column => changes[column] !== undefined);
		const assignments = [...columns.map((column, i) => `${column} = $${i + 1}`), `updated_at = $${columns.length + 1}`];
		const row = await this.db.write(sql =>
			sql.one<ProductRow>(`UPDATE products SET ${assignments.join(", ")} WHERE id = $${columns.length + 2} RETURNING *`, [
				...columns.map(column => changes[column] as string | number),
				now(),
				id
			])
		);
		return row && toProduct(row);
	}

	/** Adds units to a product's stock unless that would take it above `max`; false when nothing changed. */
	async restock(id: string, quantity: number, max: number): Promise<boolean> {
		const changed = await this.db.write(sql =>
			sql.run("UPDATE products SET stock = stock + $1, updated_at = $2 WHERE id = $3 AND stock + $1 <= $4", [quantity, now(), id, max])
		);
		return changed === 1;
	}

	/** What an order needs of each product: on every order's path, one plain SELECT. Missing ids are absent. */
	pricesOf(ids: string[]): Promise<ProductPrice[]> {
		return this.db.all<ProductPrice>(`SELECT id, sku, name, price FROM products WHERE id IN (${placeholders(ids.length)})`, ids);
	}

	/**
	 * Takes every line's units out of stock for an order, all or nothing, and remembers them in the
	 * order's hold, with the price, sku and name each product had when its units were taken: the
	 * answer's `items`, the prices the order is charged. A second call for the same order answers the
	 * first one's hold (its items too, unless the hold is older than them or was released first).
	 */
	async reserve(orderId: string, lines: StockLine[]): Promise<ReserveResult> {
		if (lines.length === 1) return this.db.writeLocked(holdLock(orderId), sql => this.reserveOneLine(sql, orderId, lines[0]));
		try {
			return await this.db.transaction(async sql => {
				await this.db.lock(sql, holdLock(orderId));
				const existing = await this.holdOf(sql, orderId);
				if (existing) return existing;
				const at = now();
				const shortage: Shortage[] = [];
				// Taken in product id order (no deadlock on PostgreSQL), kept in the order's line order.
				const items: OrderItem[] = new Array<OrderItem>(lines.length);
				const inIdOrder = byProductId(lines.map((line, i) => ({ ...line, i })));
				for (const { productId, quantity, i } of inIdOrder) {
					const product = await sql.one<ProductPrice>(`${TAKE_STOCK} RETURNING id, sku, name, price`, [quantity, at, productId]);
					if (product) {
						items[i] = heldItem(product, quantity);
					} else {
						const left = await sql.one<{ stock: number }>("SELECT stock FROM products WHERE id = $1", [productId]);
						shortage.push({ productId, requested: quantity, available: left?.stock ?? 0 });
					}
				}
				if (shortage.length > 0) throw new ShortageFound(shortage);
				await sql.run(INSERT_HOLD, [orderId, JSON.stringify(items), at]);
				return { status: "held" as const, items };
			});
		} catch (err) {
			if (err instanceof ShortageFound) return { shortage: err.shortage };
			throw err;
		}
	}

	/**
	 * `reserve` of a one-line order (most orders) without a savepoint: the one statement that may find
	 * nothing to do (no stock, or a hold already there) comes first, and the hold it leads to cannot clash.
	 */
	private async reserveOneLine(sql: Sql, orderId: string, line: StockLine): Promise<ReserveResult> {
		const at = now();
		const product = await sql.one<ProductPrice>(`${TAKE_STOCK} AND NOT EXISTS (SELECT 1 FROM holds WHERE order_id = $4) RETURNING id, sku, name, price`, [
			line.quantity,
			at,
			line.productId,
			orderId
		]);
		if (product) {
			const items = [heldItem(product, line.quantity)];
			await sql.run(INSERT_HOLD, [orderId, JSON.stringify(items), at]);
			return { status: "held", items };
		}
		const existing = await this.holdOf(sql, orderId);
		if (existing) return existing;
		const left = await sql.one<{ stock: number }>("SELECT stock FROM products WHERE id = $1", [line.productId]);
		return { shortage: [{ productId: line.productId, requested: line.quantity, available: left?.stock ?? 0 }] };
	}

	/** An order's hold as `reserve` answers it, if it has one. */
	private async holdOf(sql: Sql, orderId: string): Promise<{ status: HoldStatus; items?: OrderItem[] } | undefined> {
		const hold = await sql.one<Pick<HoldRow, "status" | "lines">>("SELECT status, lines FROM holds WHERE order_id = $1", [orderId]);
		if (!hold) return undefined;
		const items = JSON.parse(hold.lines) as Array<StockLine & Partial<OrderItem>>;
		// Holds made before they kept prices, and the empty one a release leaves, have no items.
		const priced = items.length > 0 && items.every(item => typeof item.unitPrice === "number");
		return priced ? { status: hold.status, items: items as OrderItem[] } : { status: hold.status };
	}

	/** Marks an order's held stock as sold; answers the hold's status after it (undefined: no hold). */
	async commit(orderId: string): Promise<HoldStatus | undefined> {
		const changed = await this.db.write(sql =>
			sql.run("UPDATE holds SET status = 'committed', updated_at = $1 WHERE order_id = $2 AND status = 'held'", [now(), orderId])
		);
		if (changed === 1) return "committed";
		return (await this.db.one<{ status: HoldStatus }>("SELECT status FROM holds WHERE order_id = $1", [orderId]))?.status;
	}

	/** Marks the held stock of these (confirmed) orders as sold, in one statement; answers how many holds changed. */
	commitMany(orderIds: string[]): Promise<number> {
		return this.db.write(sql =>
			sql.run(`UPDATE holds SET status = 'committed', updated_at = $1 WHERE status = 'held' AND order_id IN (${placeholders(orderIds.length, 2)})`, [
				now(),
				...orderIds
			])
		);
	}

	/**
	 * Puts an order's units back on sale; answers the lines given back (none when already released).
	 * With no hold yet it leaves a released one, so that a late reserve takes nothing.
	 */
	release(orderId: string): Promise<StockLine[]> {
		return this.db.transaction(async sql => {
			// After a reservation of this order in flight has committed, or before it starts.
			await this.db.lock(sql, holdLock(orderId));
			const at = now();
			// The one release that flips the hold gives the stock back: a second one waits on the lock
			// and then changes nothing.
			const hold = await sql.one<Pick<HoldRow, "lines">>(
				"UPDATE holds SET status = 'released', updated_at = $1 WHERE order_id = $2 AND status <> 'released' RETURNING lines",
				[at, orderId]
			);
			if (!hold) {
				await sql.run(
					"INSERT INTO holds (order_id, status, lines, created_at, updated_at) VALUES ($1, 'released', '[]', $2, $2) ON CONFLICT (order_id) DO NOTHING",
					[orderId, at]
				);
				return [];
			}
			const lines = JSON.parse(hold.lines) as StockLine[];
			for (const { productId, quantity } of byProductId(lines)) {
				await sql.run("UPDATE products SET stock = stock + $1, updated_at = $2 WHERE id = $3", [quantity, at, productId]);
			}
			return lines;
		});
	}

	/** Adds these products if the catalogue is empty (safe when two nodes start at once); answers how many it added. */
	seedIfEmpty(products: NewProduct[]): Promise<number> {
		return this.db.transaction(async (sql: Sql) => {
			const counted = await sql.one<{ total: number }>("SELECT COUNT(*) AS total FROM products");
			if ((counted?.total ?? 0) > 0) return 0;
			const at = now();
			let added = 0;
			for (const product of products) {
				added += await sql.run(INSERT_PRODUCT, productValues(product, at));
			}
			return added;
		});
	}
}
