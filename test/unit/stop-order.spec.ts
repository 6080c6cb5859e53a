/**
 * mixins/db.mixin.ts on a broker stop: no database closes while another local service with a
 * database is still stopping (the orders settle loop calls inventory and payments until it ends),
 * and a call that reaches a service whose database has closed gets Moleculer's retryable
 * ServiceNotAvailableError (503 at the gateway), never the database's own "closed" error.
 */
import { ServiceBroker, type Errors, type Service } from "moleculer";
import type { Database } from "../../lib/db/database";
import { createDbMixin } from "../../mixins/db.mixin";
import { sleep } from "./helpers";

/** A service with its own in-memory database and one action that reads it. */
const storeService = (name: string) => ({
	name,
	mixins: [createDbMixin<Database>({ migrations: [], createStore: db => db })],
	settings: { db: "sqlite::memory:" },
	actions: {
		read: {
			async handler(this: Service & { store: Database }) {
				return (await this.store.one<{ one: number }>("SELECT 1 AS one"))?.one;
			}
		}
	}
});

describe("the stop order of services with a database", () => {
	let broker: ServiceBroker;

	beforeEach(() => {
		broker = new ServiceBroker({ logger: false, transporter: null, tracking: { enabled: true, shutdownTimeout: 2000 } });
	});
	afterEach(async () => {
		if (broker.started) await broker.stop();
	});

	it("a service that calls another from its own stop handler still finds that one's database open", async () => {
		const seen: unknown[] = [];
		broker.createService(storeService("stock"));
		broker.createService({
			...storeService("sales"),
			// Like the settle loop: a last pass that calls another service while this one stops.
			async stopped(this: Service) {
				await sleep(200);
				seen.push(await this.broker.call("stock.read").catch((err: Error) => err.message));
			}
		});
		await broker.start();
		await broker.stop();
		expect(seen).toEqual([1]);
	});

	it("a call that reaches a service after its database closed gets a retryable ServiceNotAvailableError", async () => {
		let failure: Errors.MoleculerError | undefined;
		broker.createService(storeService("stock"));
		// A caller without a database of its own, late: the stock database is closed by then.
		broker.createService({
			name: "late",
			async stopped(this: Service) {
				await sleep(200);
				await this.broker.call("stock.read").catch((err: Errors.MoleculerError) => (failure = err));
			}
		});
		await broker.start();
		await broker.stop();
		expect(failure).toMatchObject({ name: "ServiceNotAvailableError", retryable: true });
		expect(failure?.message).not.toMatch(/SQLITE|closed/i);
	});

	it("a service stopped on its own (not the whole broker) closes its database at once", async () => {
		const stock = broker.createService(storeService("stock"));
		broker.createService(storeService("sales"));
		await broker.start();
		const started = Date.now();
		await broker.destroyService(stock);
		expect(Date.now() - started).toBeLessThan(1000);
		expect(await broker.call("sales.read")).toBe(1);
	});
});
