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
 *
 * Stop order: when the whole node stops (`broker.stop()`, SIGTERM), Moleculer stops every local
 * service at once, so a database could close while another local service (the orders saga, its
 * settle loop) still had calls on their way to it. Here no database closes before every local
 * service with a database has finished its own stop (its requests in flight, waited for by
 * Moleculer's `tracking`, and its own `stopped` handlers such as the settle loop's); then they all
 * close. A call that still arrives (a remote caller that had not yet heard this node leave) gets
 * Moleculer's retryable `ServiceNotAvailableError` (a 503 at the gateway, retried elsewhere by the
 * caller's retry policy), never a "database is closed" 500.
 */
import { Errors, type Context, type Service, type ServiceBroker, type ServiceSchema, type ServiceSettingSchema } from "moleculer";
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
	/** Set once the database is about to close: no action of the service may use it any more. */
	dbClosing?: boolean;
}

/** When the broker gives no tracking timeout. */
const DEFAULT_STOP_WAIT_MS = 10_000;

/**
 * The local services with a database, per broker, and those that have finished their own stop.
 * Their databases close together, once every one of them has arrived (or after the tracking
 * timeout: a stop never hangs).
 */
class CloseBarrier {
	private readonly members = new Set<Service>();
	private readonly arrived = new Set<Service>();
	private allArrived!: () => void;
	private readonly everyoneArrived = new Promise<void>(resolve => (this.allArrived = resolve));

	join(service: Service): void {
		this.members.add(service);
	}

	leave(service: Service): void {
		this.members.delete(service);
		this.arrived.delete(service);
		this.check();
	}

	/** Resolves when every member has arrived, or after `timeoutMs`; answers false on the timeout. */
	async arrive(service: Service, timeoutMs: number): Promise<boolean> {
		this.arrived.add(service);
		this.check();
		let timer: NodeJS.Timeout | undefined;
		const timedOut = new Promise<boolean>(resolve => (timer = setTimeout(() => resolve(false), timeoutMs)));
		const result = await Promise.race([this.everyoneArrived.then(() => true), timedOut]);
		clearTimeout(timer);
		return result;
	}

	private check(): void {
		if (this.arrived.size > 0 && [...this.members].every(member => this.arrived.has(member))) this.allArrived();
	}
}

const barriers = new WeakMap<ServiceBroker, CloseBarrier>();
function closeBarrier(broker: ServiceBroker): CloseBarrier {
	let barrier = barriers.get(broker);
	if (!barrier) barriers.set(broker, (barrier = new CloseBarrier()));
	return barrier;
}

function stopWaitMs(broker: ServiceBroker): number {
	const tracking = broker.options.tracking;
	return tracking?.enabled && typeof tracking.shutdownTimeout === "number" ? tracking.shutdownTimeout : DEFAULT_STOP_WAIT_MS;
}

/** An error that is the caller's (4xx) stands; anything else, once the database is closing, is "not available here". */
const isClientError = (err: unknown) => {
	const code = (err as { code?: unknown } | null)?.code;
	return typeof code === "number" && code >= 400 && code < 500;
};

/**
 * "Not available here", as Moleculer says it of a stopping node. `ran`: the handler had started (its
 * database closed under it), so the call must not be sent to another node as one that never ran
 * (lib/refused-retry.ts): an order could be placed twice.
 */
function notAvailableHere(service: Service, ctx: Context, ran: boolean): Errors.MoleculerRetryableError {
	return new Errors.ServiceNotAvailableError({ action: ctx.action?.name ?? service.name, nodeID: service.broker.nodeID, ...(ran ? { ran } : {}) });
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
		hooks: {
			before: {
				"*"(this: Service & DbVars<Store>, ctx: Context) {
					if (this.dbClosing) throw notAvailableHere(this, ctx, false);
				}
			},
			error: {
				"*"(this: Service & DbVars<Store>, ctx: Context, err: unknown) {
					if (this.dbClosing && !isClientError(err)) throw notAvailableHere(this, ctx, true);
					throw err;
				}
			}
		},
		async started() {
			this.db = await openDatabase(this.settings.db, this.logger);
			const applied = await migrate(this.db, options.migrations, this.logger);
			this.store = options.createStore(this.db);
			closeBarrier(this.broker).join(this as unknown as Service);
			this.logger.info(`Database ready (${this.db.dialect}${applied.length > 0 ? `, ${applied.length} migration(s) applied` : ""}).`);
		},
		/** Runs after the service's own `stopped` handlers (it is the first mixin started, so the last stopped). */
		async stopped() {
			const self = this as unknown as Service;
			const barrier = closeBarrier(this.broker);
			// The whole node is stopping: wait for the other local services to finish their stop first.
			if (this.broker.stopping && !(await barrier.arrive(self, stopWaitMs(this.broker)))) {
				this.logger.warn("Closing the database before every local service has stopped (stop timeout).");
			}
			this.dbClosing = true;
			barrier.leave(self);
			await this.db?.close();
		}
	};
	// A mixin's `this` is the service that mixes it in; Moleculer's types cannot say so.
	return mixin as unknown as Partial<ServiceSchema>;
}
