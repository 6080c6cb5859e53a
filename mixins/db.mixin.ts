/**
 * Gives a service its own database and its store: `settings.db` (a service's default is
 * `shopConfig().dbUrl(name)`: `<SERVICE>_DB`, or `$DATA_DIR/<service>.sqlite`) is opened and
 * migrated before the service's own `started` runs, and closed after it stops.
 *
 *     mixins: [createDbMixin({ migrations, createStore: db => new OrdersStore(db) })],
 *     settings: { db: shopConfig().dbUrl("orders") },
 *     ...   await this.store.find(id)
 *
 * Tests give another database with `createService({ mixins: [Service], settings: { db: "sqlite::memory:" } })`.
 */
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import { openDatabase, type Database } from "../lib/db/database";
import { migrate, type Migration } from "../lib/db/migrations";

export interface DbSettings extends ServiceSettingSchema {
	/** The database URL: `sqlite:<file>`, `sqlite::memory:` or `postgres://...`. */
	db: string;
}

/** What the mixin adds to a service's `this`. */
export interface DbVars<Store> {
	db: Database;
	store: Store;
}

export interface DbOptions<Store> {
	/** The store's schema history, oldest first. */
	migrations: Migration[];
	createStore(db: Database): Store;
}

export function createDbMixin<Store>(options: DbOptions<Store>): Partial<ServiceSchema> {
	const mixin: ServiceSchema<DbSettings, object, DbVars<Store>> = {
		name: "db",
		// The URL may carry a password: never in the descriptor other nodes receive.
		settings: { $secureSettings: ["db"] } as unknown as DbSettings,
		async started() {
			this.db = await openDatabase(this.settings.db, this.logger);
			const applied = await migrate(this.db, options.migrations, this.logger);
			this.store = options.createStore(this.db);
			this.logger.info(`Database ready (${this.db.dialect}${applied.length > 0 ? `, ${applied.length} migration(s) applied` : ""}).`);
		},
		async stopped() {
			await this.db?.close();
		}
	};
	// A mixin's `this` is the service that mixes it in; Moleculer's types cannot say so.
	return mixin as unknown as Partial<ServiceSchema>;
}
