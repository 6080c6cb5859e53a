/**
 * lib/db on SQLite (PostgreSQL is covered by test/integration/postgres.spec.ts against a real
 * server): migrations, bound values, the writer queue's transactions and commits, unique
 * violations; and the one method of each store whose rules are the subtlest.
 */
import path from "node:path";
import { ServiceBroker, type Logger, type Service, type ServiceSchema } from "moleculer";
import sqlite3 from "sqlite3";
import { openDatabase, type Database } from "../../lib/db/database";
import { migrate, type Migration } from "../../lib/db/migrations";
import { migrations as inventoryMigrations } from "../../services/inventory/inventory.migrations";
import InventoryService from "../../services/inventory/inventory.service";
import { InventoryStore } from "../../services/inventory/inventory.store";
import { migrations as ordersMigrations } from "../../services/orders/orders.migrations";
import OrdersService from "../../services/orders/orders.service";
import { OrdersStore, type StoredOrder } from "../../services/orders/orders.store";
import { migrations as paymentsMigrations } from "../../services/payments/payments.migrations";
import PaymentsService from "../../services/payments/payments.service";
import { PaymentsStore } from "../../services/payments/payments.store";
import UsersService from "../../services/users/users.service";
import { dbOf, sleep, tempDir, unitSettings } from "./helpers";

const logger = { trace: jest.fn(), debug: jest.fn(), info: jest.fn(), warn: jest.fn(), error: jest.fn(), fatal: jest.fn() } as unknown as Logger;

const tmp = tempDir("shop-db-");
afterAll(() => tmp.remove());
let fileCounter = 0;
/** A URL of a SQLite file of its own in the temp dir. */
const newFileUrl = () => `sqlite:${path.join(tmp.dir, `db-${++fileCounter}.sqlite`)}`;

/** Every database a test opened is closed after it. */
const opened: Database[] = [];
async function open(url = "sqlite::memory:"): Promise<Database> {
	const db = await openDatabase(url, logger);
	opened.push(db);
	return db;
}
afterEach(async () => {
	await Promise.all(opened.splice(0).map(db => db.close()));
	jest.restoreAllMocks();
});

const tablesOf = async (db: Database) =>
	(await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")).map(row => row.name);
const appliedIn = async (db: Database) => (await db.all<{ name: string }>("SELECT name FROM schema_migrations ORDER BY name")).map(row => row.name);

/** Migrations that each create one table, counting how often they ran; `slowMs` keeps each one busy that long. */
function tableMigrations(tables: string[], slowMs = 0): { migrations: Migration[]; runs: Map<string, number> } {
	const runs = new Map<string, number>();
	const migrations: Migration[] = tables.map((table, i) => ({
		name: `test-${String(i + 1).padStart(3, "0")}-${table}`,
		async up({ context: { sql } }) {
			runs.set(table, (runs.get(table) ?? 0) + 1);
			await sql.run(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, note TEXT)`);
			if (slowMs > 0) await sleep(slowMs);
			await sql.run(`INSERT INTO ${table} (note) VALUES ($1)`, [`made by ${table}`]);
		}
	}));
	return { migrations, runs };
}

// --- Migrations ------------------------------------------------------------------------------------

/** Every `exec` the SQLite driver is given from now on (transaction control: BEGIN, SAVEPOINT, RELEASE, COMMIT, ...). */
function recordExecs(): string[] {
	const execs: string[] = [];
	const exec = sqlite3.Database.prototype.exec;
	jest.spyOn(sqlite3.Database.prototype, "exec").mockImplementation(function (
		this: sqlite3.Database,
		statement: string,
		callback?: (err: Error | null) => void
	) {
		execs.push(statement);
		return exec.call(this, statement, callback);
	});
	return execs;
}
describe("migrations (umzug, SQLite)", () => {
	it("run once: a second start applies none, and schema_migrations lists them", async () => {
		const url = newFileUrl();
		const { migrations, runs } = tableMigrations(["alpha", "beta"]);

		const first = await open(url);
		expect(await migrate(first, migrations, logger)).toEqual(["test-001-alpha", "test-002-beta"]);
		await first.close();

		const second = await open(url);
		expect(await migrate(second, migrations, logger)).toEqual([]);
		expect(await appliedIn(second)).toEqual(["test-001-alpha", "test-002-beta"]);
		expect(Object.fromEntries(runs)).toEqual({ alpha: 1, beta: 1 });
		// Their work is there once.
		expect(await second.all("SELECT note FROM alpha")).toEqual([{ note: "made by alpha" }]);

		// A migration added later is the only one the next start applies.
		const later = tableMigrations(["alpha", "beta", "gamma"]);
		expect(await migrate(second, later.migrations, logger)).toEqual(["test-003-gamma"]);
		expect(Object.fromEntries(later.runs)).toEqual({ gamma: 1 });
		expect(await appliedIn(second)).toEqual(["test-001-alpha", "test-002-beta", "test-003-gamma"]);
	});

	it("two databases opened on the same file and migrating at the same moment both succeed, and each migration ran once", async () => {
		const url = newFileUrl();
		// Slow migrations: the second node arrives while the first one's run holds the file.
		const { migrations, runs } = tableMigrations(["one", "two", "three"], 50);
		const [a, b] = await Promise.all([open(url), open(url)]);

		const [appliedByA, appliedByB] = await Promise.all([migrate(a, migrations, logger), migrate(b, migrations, logger)]);

		expect([...appliedByA, ...appliedByB].sort()).toEqual(["test-001-one", "test-002-two", "test-003-three"]);
		// One run did everything; the other found nothing left.
		expect([appliedByA.length, appliedByB.length].sort()).toEqual([0, 3]);
		expect(Object.fromEntries(runs)).toEqual({ one: 1, two: 1, three: 1 });
		expect(await appliedIn(a)).toEqual(["test-001-one", "test-002-two", "test-003-three"]);
		expect(await appliedIn(b)).toEqual(await appliedIn(a));
		expect(await b.all("SELECT note FROM three")).toEqual([{ note: "made by three" }]);
	});

	it("a failing migration rolls back everything of its run: the tables of earlier migrations in it, and the bookkeeping", async () => {
		const url = newFileUrl();
		const db = await open(url);
		// An earlier start, committed.
		const base = tableMigrations(["kept"]);
		await migrate(db, base.migrations, logger);

		const failing: Migration[] = [
			...tableMigrations(["kept", "first_new", "second_new"]).migrations,
			{
				name: "test-004-broken",
				async up({ context: { sql } }) {
					await sql.run("CREATE TABLE half_done (id INTEGER PRIMARY KEY)");
					throw new Error("the migration is broken");
				}
			}
		];
		await expect(migrate(db, failing, logger)).rejects.toThrow(/the migration is broken/);

		const tables = await tablesOf(db);
		expect(tables).toEqual(expect.arrayContaining(["kept", "schema_migrations"]));
		for (const table of ["first_new", "second_new", "half_done"]) expect(tables).not.toContain(table);
		expect(await appliedIn(db)).toEqual(["test-001-kept"]);
		expect(await db.all("SELECT note FROM kept")).toEqual([{ note: "made by kept" }]);

		// And on a fresh database, nothing of a failed first run is left, schema_migrations included.
		const fresh = await open(newFileUrl());
		await expect(migrate(fresh, failing, logger)).rejects.toThrow(/the migration is broken/);
		expect(await tablesOf(fresh)).toEqual([]);

		// Once fixed, the next start applies the whole run.
		const fixed = [...failing.slice(0, 3), { name: "test-004-broken", async up() {} } satisfies Migration];
		expect(await migrate(db, fixed, logger)).toEqual(["test-002-first_new", "test-003-second_new", "test-004-broken"]);
	});

	it("the services' own migrations apply on an empty database and again on a migrated one without change", async () => {
		const db = await open(newFileUrl());
		for (const migrations of [inventoryMigrations, ordersMigrations, paymentsMigrations]) {
			expect((await migrate(db, migrations, logger)).length).toBe(migrations.length);
			expect(await migrate(db, migrations, logger)).toEqual([]);
		}
		expect(await tablesOf(db)).toEqual(expect.arrayContaining(["holds", "orders", "payments", "products", "voided_orders"]));
	});
});

// --- Statements --------------------------------------------------------------------------------------

describe("SqliteDatabase", () => {
	const createTable = (db: Database) =>
		db.write(sql => sql.run("CREATE TABLE things (k TEXT PRIMARY KEY, v TEXT, n INTEGER, u TEXT UNIQUE, required TEXT NOT NULL DEFAULT 'x')"));

	it("binds values, never writing them into the SQL text: NUL, quotes, --, $1 round-trip exactly", async () => {
		const db = await open();
		await createTable(db);
		const texts: string[] = [];
		for (const method of ["prepare", "exec", "run", "all", "get"] as const) {
			const original = sqlite3.Database.prototype[method] as (...args: unknown[]) => unknown;
			jest.spyOn(sqlite3.Database.prototype, method).mockImplementation(function (this: sqlite3.Database, ...args: unknown[]) {
				texts.push(String(args[0]));
				return original.apply(this, args);
			} as never);
		}

		const tricky = [
			"a\u0000b",
			"\u0000",
			"it's",
			"''",
			'say "hi"',
			"x -- not a comment",
			"$1",
			"$2 $1 ?1 :a @a",
			"'); DROP TABLE things; --",
			'"; DELETE FROM things; --',
			"\\' OR '1'='1",
			"line\r\nbreak\u2028\u0085",
			"emoji 🛒 and ünïcödé",
			""
		];
		for (const [i, value] of tricky.entries()) {
			const key = `key ${i} ${value}`;
			// $2 before $1 in the text: placeholders are bound by number, whatever their order.
			await db.write(sql => sql.run("INSERT INTO things (v, k, n) VALUES ($2, $1, $3)", [key, value, i]));
			await expect(db.one("SELECT k, v, n FROM things WHERE k = $1", [key])).resolves.toEqual({ k: key, v: value, n: i });
			await expect(db.one("SELECT k FROM things WHERE v = $1 AND n = $2", [value, i])).resolves.toEqual({ k: key });
		}
		expect(await db.all("SELECT k FROM things")).toHaveLength(tricky.length);
		// A value used twice, and null.
		await db.write(sql => sql.run("UPDATE things SET v = $1, u = $2 WHERE k = $1", ["key 6 $1", null]));
		await expect(db.one("SELECT v, u FROM things WHERE k = $1", ["key 6 $1"])).resolves.toEqual({ v: "key 6 $1", u: null });

		// The spies saw the statements (so the check below looks at something).
		expect(texts).toContain("INSERT INTO things (v, k, n) VALUES ($2, $1, $3)");
		for (const value of tricky.filter(text => text.length > 3)) {
			for (const text of texts) expect(text).not.toContain(value);
		}
	});

	it("a transaction that throws leaves nothing, while the other jobs batched with it commit", async () => {
		const url = newFileUrl();
		const db = await open(url);
		await createTable(db);
		const begins = jest.fn();
		const exec = sqlite3.Database.prototype.exec;
		jest.spyOn(sqlite3.Database.prototype, "exec").mockImplementation(function (
			this: sqlite3.Database,
			statement: string,
			callback?: (err: Error | null) => void
		) {
			if (/^BEGIN/.test(statement)) begins();
			return exec.call(this, statement, callback);
		});
		const insert = (k: string) => (sql: Parameters<Parameters<Database["write"]>[0]>[0]) => sql.run("INSERT INTO things (k) VALUES ($1)", [k]);

		// Queued together: the first job starts a batch at once, the others share the next one.
		const jobs = [
			db.write(insert("before")),
			db.write(insert("w1")),
			db.transaction(async sql => {
				await insert("t-fail-1")(sql);
				await insert("t-fail-2")(sql);
				throw new Error("changed my mind");
			}),
			db.transaction(async sql => {
				await insert("t-ok-1")(sql);
				await insert("t-ok-2")(sql);
				return "kept";
			}),
			// A statement that fails on its own (duplicate key) takes nothing else with it.
			db.write(insert("w1")),
			db.write(insert("w2"))
		];
		const outcomes = await Promise.allSettled(jobs);

		expect(outcomes.map(outcome => outcome.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "rejected", "fulfilled"]);
		expect((outcomes[2] as PromiseRejectedResult).reason).toMatchObject({ message: "changed my mind" });
		expect(outcomes[3]).toEqual({ status: "fulfilled", value: "kept" });
		expect((outcomes[4] as PromiseRejectedResult).reason).toMatchObject({ code: "SQLITE_CONSTRAINT", message: expect.stringMatching(/UNIQUE|PRIMARY KEY/) });
		// They did share commits: fewer transactions than jobs.
		expect(begins).toHaveBeenCalled();
		expect(begins.mock.calls.length).toBeLessThan(jobs.length);

		const keys = async (on: Database) => (await on.all<{ k: string }>("SELECT k FROM things ORDER BY k")).map(row => row.k);
		expect(await keys(db)).toEqual(["before", "t-ok-1", "t-ok-2", "w1", "w2"]);
		// Committed, as another connection sees it.
		const other = await open(url);
		expect(await keys(other)).toEqual(["before", "t-ok-1", "t-ok-2", "w1", "w2"]);
	});

	it("a batch sends one transaction-control trip per transaction, plus the COMMIT: each SAVEPOINT goes with the BEGIN or the RELEASE before it, the last RELEASE with the COMMIT; a failed one is still undone alone", async () => {
		const url = newFileUrl();
		const db = await open(url);
		await createTable(db);
		const execs = recordExecs();
		const insert = (k: string) => (sql: Parameters<Parameters<Database["write"]>[0]>[0]) => sql.run("INSERT INTO things (k) VALUES ($1)", [k]);
		const both = (a: string, b: string) => async (sql: Parameters<Parameters<Database["write"]>[0]>[0]) => {
			await insert(a)(sql);
			await insert(b)(sql);
		};

		// The first write starts a batch at once (once the queue is idle); the rest queue behind it and share the next one.
		await sleep(20);
		const first = db.write(insert("starter"));
		const jobs = [
			db.transaction(both("t1-a", "t1-b")),
			// Runs inside t1's savepoint, whose RELEASE waits for the next trip: it is kept all the same.
			db.write(insert("w1")),
			db.transaction(async sql => {
				await both("t-fail-a", "t-fail-b")(sql);
				throw new Error("changed my mind");
			}),
			db.write(insert("w2")),
			db.transaction(both("t2-a", "t2-b"))
		];
		await first;
		const outcomes = await Promise.allSettled(jobs);

		expect(outcomes.map(outcome => outcome.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
		expect(execs).toEqual([
			// The starter's batch.
			"BEGIN IMMEDIATE",
			"COMMIT",
			"BEGIN IMMEDIATE; SAVEPOINT job",
			"RELEASE job; SAVEPOINT job",
			"ROLLBACK TO job; RELEASE job",
			"SAVEPOINT job",
			"RELEASE job; COMMIT"
		]);
		const other = await open(url);
		expect((await other.all<{ k: string }>("SELECT k FROM things ORDER BY k")).map(row => row.k)).toEqual([
			"starter",
			"t1-a",
			"t1-b",
			"t2-a",
			"t2-b",
			"w1",
			"w2"
		]);
	});

	it("writeLocked runs without a savepoint, and one that fails after a statement of its own succeeded keeps nothing while its batch commits", async () => {
		const db = await open();
		await createTable(db);
		const execs = recordExecs();
		const first = db.write(sql => sql.run("INSERT INTO things (k) VALUES ('starter')"));
		const jobs = [
			db.writeLocked("key", sql => sql.run("INSERT INTO things (k) VALUES ('locked-ok')")),
			db.writeLocked("key", async sql => {
				await sql.run("INSERT INTO things (k) VALUES ('locked-half')");
				await sql.run("INSERT INTO things (k) VALUES ('starter')"); // a clash
			}),
			db.write(sql => sql.run("INSERT INTO things (k) VALUES ('after')"))
		];
		await first;
		const outcomes = await Promise.allSettled(jobs);
		expect(outcomes.map(outcome => outcome.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
		expect(execs.some(statement => /SAVEPOINT/.test(statement))).toBe(false);
		expect((await db.all<{ k: string }>("SELECT k FROM things ORDER BY k")).map(row => row.k)).toEqual(["after", "locked-ok", "starter"]);
	});

	describe("exactly once: a job is told success exactly when its writes are committed", () => {
		type Work = Parameters<Database["write"]>[0];
		const insert =
			(k: string): Work =>
			sql =>
				sql.run("INSERT INTO things (k) VALUES ($1)", [k]);
		/** Rolls the whole transaction back: the key is taken (as disk full or an I/O error may do). */
		const insertOrRollback =
			(k: string): Work =>
			sql =>
				sql.run("INSERT OR ROLLBACK INTO things (k) VALUES ($1)", [k]);
		const keysOf = async (on: Database) => (await on.all<{ k: string }>("SELECT k FROM things ORDER BY k")).map(row => row.k);
		const statusesOf = (outcomes: PromiseSettledResult<unknown>[]) => outcomes.map(outcome => outcome.status);
		const reasonOf = (outcome: PromiseSettledResult<unknown>) => (outcome as PromiseRejectedResult).reason as Error & { code?: string };

		it("when SQLite rolls the batch's transaction back by itself (INSERT OR ROLLBACK), fails the job that caused it; the jobs batched before and after it are committed and told success, each exactly once", async () => {
			const url = newFileUrl();
			const db = await open(url);
			await createTable(db);
			await db.write(insert("taken"));
			const runs = new Map<string, number>();
			const counted =
				<T>(name: string, work: (sql: Parameters<Work>[0]) => Promise<T>) =>
				(sql: Parameters<Work>[0]) => {
					runs.set(name, (runs.get(name) ?? 0) + 1);
					return work(sql);
				};

			// The first job starts a batch at once; the others share the next one.
			const jobs = [
				db.write(insert("starter")),
				db.write(insert("w-before")),
				db.transaction(
					counted("t-before", async sql => {
						await insert("t-before-1")(sql);
						await insert("t-before-2")(sql);
						return "t-before";
					})
				),
				db.transaction(
					counted("t-fails", async sql => {
						await insert("t-fails-1")(sql);
						throw new Error("changed my mind");
					})
				),
				db.write(insertOrRollback("taken")),
				db.write(insert("w-after")),
				db.transaction(async sql => {
					await insert("t-after-1")(sql);
					await insert("t-after-2")(sql);
					return "t-after";
				}),
				db.write(insert("w-last"))
			];
			const outcomes = await Promise.allSettled(jobs);

			expect(statusesOf(outcomes)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected", "fulfilled", "fulfilled", "fulfilled"]);
			expect(outcomes[2]).toEqual({ status: "fulfilled", value: "t-before" });
			expect(outcomes[6]).toEqual({ status: "fulfilled", value: "t-after" });
			expect(reasonOf(outcomes[3]).message).toBe("changed my mind");
			expect(reasonOf(outcomes[4])).toMatchObject({ code: "SQLITE_CONSTRAINT" });
			// A job that failed by itself is not run again; one rolled back with the batch ran again.
			expect(runs.get("t-fails")).toBe(1);
			expect(runs.get("t-before")).toBe(2);

			// Told success exactly when committed: what another connection sees.
			const committed = ["starter", "t-after-1", "t-after-2", "t-before-1", "t-before-2", "taken", "w-after", "w-before", "w-last"];
			const other = await open(url);
			expect(await keysOf(other)).toEqual(committed);
			expect(await keysOf(db)).toEqual(committed);
			// And the queue goes on working.
			await expect(db.write(insert("later"))).resolves.toBe(1);
			expect(await keysOf(other)).toEqual([...committed, "later"].sort());
		});

		it("a job that swallows the error and writes on keeps nothing and is told it failed; the rest of the batch is committed", async () => {
			const url = newFileUrl();
			const db = await open(url);
			await createTable(db);
			await db.write(insert("taken"));

			const jobs = [
				db.write(insert("starter")),
				db.transaction(async sql => {
					await insert("t-1")(sql);
					return "t";
				}),
				db.transaction(async sql => {
					await insertOrRollback("taken")(sql).catch(() => 0);
					// The transaction is gone: this statement must not commit on its own.
					await insert("after-swallow")(sql).catch(() => 0);
					return "swallowed";
				}),
				db.write(insert("w-after"))
			];
			const outcomes = await Promise.allSettled(jobs);

			expect(statusesOf(outcomes)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
			expect(reasonOf(outcomes[2])).toMatchObject({ code: "SQLITE_CONSTRAINT" });
			const other = await open(url);
			expect(await keysOf(other)).toEqual(["starter", "t-1", "taken", "w-after"]);
		});

		it("a single-statement write whose work throws after its statement keeps nothing and is told it failed", async () => {
			const url = newFileUrl();
			const db = await open(url);
			await createTable(db);

			const jobs = [
				db.write(insert("starter")),
				db.write(insert("w-before")),
				db.write(async sql => {
					await insert("half")(sql);
					throw new Error("failed after its write");
				}),
				db.write(insert("w-after"))
			];
			const outcomes = await Promise.allSettled(jobs);

			expect(statusesOf(outcomes)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
			expect(reasonOf(outcomes[2]).message).toBe("failed after its write");
			const other = await open(url);
			expect(await keysOf(other)).toEqual(["starter", "w-after", "w-before"]);
		});

		it("a job that fills the disk (SQLITE_FULL) fails alone; the others of its batch are committed and told so", async () => {
			const url = newFileUrl();
			const db = await open(url);
			await createTable(db);
			await db.write(insert("taken"));
			// A "disk" a few pages larger than the database: a big row cannot fit.
			const pages = (await db.one<{ page_count: number }>("PRAGMA page_count"))?.page_count ?? 0;
			await db.all(`PRAGMA max_page_count = ${pages + 8}`);
			const big = "x".repeat(256 * 1024);

			const jobs = [
				db.write(insert("starter")),
				db.write(insert("w-before")),
				db.transaction(async sql => {
					await insert("t-before")(sql);
					return "t-before";
				}),
				db.write(sql => sql.run("INSERT INTO things (k, v) VALUES ($1, $2)", ["too-big", big])),
				db.transaction(async sql => {
					await insert("t-too-big")(sql);
					await sql.run("UPDATE things SET v = $1 WHERE k = $2", [big, "t-too-big"]);
				}),
				db.write(insert("w-after"))
			];
			const outcomes = await Promise.allSettled(jobs);

			expect(statusesOf(outcomes)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected", "fulfilled"]);
			expect(reasonOf(outcomes[3])).toMatchObject({ code: "SQLITE_FULL" });
			expect(reasonOf(outcomes[4])).toMatchObject({ code: "SQLITE_FULL" });
			const other = await open(url);
			expect(await keysOf(other)).toEqual(["starter", "t-before", "taken", "w-after", "w-before"]);
		});
	});

	it("answers a write only after its commit: another connection reading right after sees it", async () => {
		const url = newFileUrl();
		const writer = await open(url);
		const reader = await open(url);
		await createTable(writer);

		const seenAfterAnswer = await Promise.all(
			Array.from({ length: 40 }, (_, i) =>
				(i % 3 === 0
					? writer.transaction(async sql => {
							await sql.run("INSERT INTO things (k, n) VALUES ($1, $2)", [`t${i}`, i]);
							return sql.run("UPDATE things SET v = $1 WHERE k = $2", ["done", `t${i}`]);
						})
					: writer.write(sql => sql.run("INSERT INTO things (k, n, v) VALUES ($1, $2, $3)", [`w${i}`, i, "done"]))
				).then(() => reader.one<{ v: string }>("SELECT v FROM things WHERE n = $1", [i]))
			)
		);
		expect(seenAfterAnswer).toEqual(Array(40).fill({ v: "done" }));
		// And on its own connection, at once.
		await writer.write(sql => sql.run("INSERT INTO things (k) VALUES ($1)", ["mine"]));
		await expect(writer.one("SELECT k FROM things WHERE k = $1", ["mine"])).resolves.toEqual({ k: "mine" });
	});

	it("close lets queued writes commit first, and may be called twice", async () => {
		const url = newFileUrl();
		const db = await openDatabase(url, logger);
		await createTable(db);
		const pending = Array.from({ length: 10 }, (_, i) => db.write(sql => sql.run("INSERT INTO things (k) VALUES ($1)", [`k${i}`])));
		await Promise.all([db.close(), db.close()]);
		await Promise.all(pending);
		const reopened = await open(url);
		await expect(reopened.one("SELECT COUNT(*) AS count FROM things")).resolves.toEqual({ count: 10 });
	});
});

// --- Durability ------------------------------------------------------------------------------------

describe("durability (PRAGMA synchronous)", () => {
	const FULL = 2;
	const NORMAL = 1;
	const synchronousOf = async (db: Database) => (await db.one<{ synchronous: number }>("PRAGMA synchronous"))?.synchronous;

	it("every service's SQLite file syncs each commit (FULL): orders, payments and holds in separate files survive a power cut together", async () => {
		const dir = path.join(tmp.dir, "services");
		const settings = unitSettings(dir);
		const broker = new ServiceBroker({ logger: false, transporter: null });
		broker.createService({ name: "users", mixins: [UsersService], settings: settings.users } as ServiceSchema);
		broker.createService({ name: "inventory", mixins: [InventoryService], settings: settings.inventory } as ServiceSchema);
		broker.createService({ name: "orders", mixins: [OrdersService], settings: settings.orders } as ServiceSchema);
		broker.createService({ name: "payments", mixins: [PaymentsService], settings: settings.payments } as ServiceSchema);
		await broker.start();
		try {
			for (const name of ["orders", "payments", "inventory", "users"]) {
				const db = dbOf(broker.getLocalService(name) as Service);
				expect({ name, synchronous: await synchronousOf(db), journal: (await db.one<{ journal_mode: string }>("PRAGMA journal_mode"))?.journal_mode }).toEqual({
					name,
					synchronous: FULL,
					journal: "wal"
				});
			}
		} finally {
			await broker.stop();
		}
	});

	it("a sqlite URL may ask for ?synchronous=normal, and refuses an option it does not know", async () => {
		const file = path.join(tmp.dir, "normal.sqlite");
		expect(await synchronousOf(await open(`sqlite:${file}?synchronous=normal`))).toBe(NORMAL);
		expect(await synchronousOf(await open(`sqlite:${file}?synchronous=FULL`))).toBe(FULL);
		expect(await synchronousOf(await open(`sqlite:${file}`))).toBe(FULL);
		await expect(openDatabase(`sqlite:${file}?synchronous=off`, logger)).rejects.toThrow(/synchronous=off.*only synchronous=full or synchronous=normal/);
		await expect(openDatabase(`sqlite:${file}?cache=shared`, logger)).rejects.toThrow(/cache=shared/);
	});
});

// --- The stores' subtlest methods ------------------------------------------------------------------

async function storeOn<Store>(migrations: Migration[], create: (db: Database) => Store): Promise<{ db: Database; store: Store }> {
	const db = await open();
	await migrate(db, migrations, logger);
	return { db, store: create(db) };
}

describe("InventoryStore.reserve", () => {
	it("is all or nothing: a shortage answers { shortage } for every short line, and changes no stock and no hold", async () => {
		const { db, store } = await storeOn(inventoryMigrations, db => new InventoryStore(db));
		const product = (id: string, stock: number) => store.insertProduct({ id, sku: `SKU-${id}`, name: id, description: "", price: 100, stock });
		await product("p-a", 10);
		await product("p-b", 1);
		await product("p-c", 5);
		await product("p-d", 0);
		const stocks = async () => (await db.all<{ id: string; stock: number }>("SELECT id, stock FROM products ORDER BY id")).map(row => [row.id, row.stock]);
		const priced = (id: string, quantity: number) => ({ productId: id, sku: `SKU-${id}`, name: id, quantity, unitPrice: 100 });
		const before = await stocks();

		// Lines out of id order: the ones that fit come first and last.
		const answer = await store.reserve("order-short", [
			{ productId: "p-c", quantity: 5 },
			{ productId: "p-b", quantity: 2 },
			{ productId: "p-d", quantity: 1 },
			{ productId: "p-a", quantity: 10 }
		]);
		expect(answer).toEqual({
			shortage: [
				{ productId: "p-b", requested: 2, available: 1 },
				{ productId: "p-d", requested: 1, available: 0 }
			]
		});
		expect(await stocks()).toEqual(before);
		expect(await db.one("SELECT status FROM holds WHERE order_id = $1", ["order-short"])).toBeUndefined();

		// An unknown product is short of everything.
		await expect(store.reserve("order-ghost", [{ productId: "p-ghost", quantity: 1 }])).resolves.toEqual({
			shortage: [{ productId: "p-ghost", requested: 1, available: 0 }]
		});

		// The same order, once it fits, takes every line; a second call takes nothing more.
		await expect(
			store.reserve("order-short", [
				{ productId: "p-a", quantity: 10 },
				{ productId: "p-b", quantity: 1 }
			])
		).resolves.toEqual({ status: "held", items: [priced("p-a", 10), priced("p-b", 1)] });
		await expect(store.reserve("order-short", [{ productId: "p-a", quantity: 10 }])).resolves.toEqual({
			status: "held",
			items: [priced("p-a", 10), priced("p-b", 1)]
		});
		expect(await stocks()).toEqual([
			["p-a", 0],
			["p-b", 0],
			["p-c", 5],
			["p-d", 0]
		]);
	});
});

describe("OrdersStore.finish", () => {
	const order = (id: string): StoredOrder => {
		const at = new Date().toISOString();
		return {
			id,
			userId: "user-1",
			status: "pending",
			items: [{ productId: "p", sku: "P", name: "P", quantity: 1, unitPrice: 100 }],
			total: 100,
			cancelReason: null,
			idempotencyKey: null,
			firstResponse: null,
			ownerNode: "node-1",
			attendedAt: at,
			createdAt: at,
			updatedAt: at
		};
	};
	const at = () => new Date().toISOString();

	it("lets the first writer win: a cancelled order is never confirmed, nor cancelled twice", async () => {
		const { store } = await storeOn(ordersMigrations, db => new OrdersStore(db));
		await store.insert(order("o-1"));

		expect(await store.finish("o-1", { status: "cancelled", cancelReason: "payment_failed", firstResponse: 409, updatedAt: at() })).toBe(true);
		expect(await store.finish("o-1", { status: "confirmed", cancelReason: null, firstResponse: 201, updatedAt: at() })).toBe(false);
		expect(await store.finish("o-1", { status: "cancelled", cancelReason: "payment_declined", firstResponse: 402, updatedAt: at() })).toBe(false);
		await expect(store.find("o-1")).resolves.toMatchObject({ status: "cancelled", cancelReason: "payment_failed", firstResponse: 409 });

		// Racing: of two cancellations, exactly one wins, and the order keeps the winner's reason.
		await store.insert(order("o-2"));
		const [failed, declined] = await Promise.all([
			store.finish("o-2", { status: "cancelled", cancelReason: "payment_failed", firstResponse: null, updatedAt: at() }),
			store.finish("o-2", { status: "cancelled", cancelReason: "payment_declined", firstResponse: null, updatedAt: at() })
		]);
		expect([failed, declined].filter(Boolean)).toHaveLength(1);
		await expect(store.find("o-2")).resolves.toMatchObject({ status: "cancelled", cancelReason: failed ? "payment_failed" : "payment_declined" });
	});

	it("refuses to confirm an order once its cancellation was claimed, and lets one claim win", async () => {
		const { store } = await storeOn(ordersMigrations, db => new OrdersStore(db));
		await store.insert(order("o-3"));
		await store.recordFirstResponse("o-3", 202);

		expect(await store.claimCancellation("o-3", "cancelled_by_user", "node-2")).toBe(true);
		expect(await store.claimCancellation("o-3", "cancelled_by_user", "node-3")).toBe(false);
		await expect(store.find("o-3")).resolves.toMatchObject({ status: "pending", cancelReason: "cancelled_by_user", ownerNode: "node-2" });

		expect(await store.finish("o-3", { status: "confirmed", cancelReason: null, firstResponse: 201, updatedAt: at() })).toBe(false);
		await expect(store.find("o-3")).resolves.toMatchObject({ status: "pending", cancelReason: "cancelled_by_user" });
		expect(await store.finish("o-3", { status: "cancelled", cancelReason: "cancelled_by_user", firstResponse: 409, updatedAt: at() })).toBe(true);
		// The answer first recorded stands.
		await expect(store.find("o-3")).resolves.toMatchObject({ status: "cancelled", cancelReason: "cancelled_by_user", firstResponse: 202 });
		expect(await store.claimCancellation("o-3", "cancelled_by_user", "node-2")).toBe(false);

		// A confirmed order: the claim is allowed, and nothing confirms over it.
		await store.insert(order("o-4"));
		expect(await store.finish("o-4", { status: "confirmed", cancelReason: null, firstResponse: 201, updatedAt: at() })).toBe(true);
		expect(await store.claimCancellation("o-4", "cancelled_by_user", "node-1")).toBe(true);
		expect(await store.finish("o-4", { status: "confirmed", cancelReason: null, firstResponse: 201, updatedAt: at() })).toBe(false);
		expect(await store.unfinished(10)).toEqual([expect.objectContaining({ id: "o-4", status: "confirmed", cancelReason: "cancelled_by_user" })]);
	});
});

describe("PaymentsStore.capture", () => {
	const payment = (orderId: string, status: "captured" | "declined" = "captured") => ({
		id: `pay-${orderId}-${status}`,
		orderId,
		userId: "user-1",
		amount: 1234,
		status,
		cardLast4: "4242"
	});

	it("answers undefined after resolve voided the order, and stores nothing", async () => {
		const { db, store } = await storeOn(paymentsMigrations, db => new PaymentsStore(db));
		await expect(store.resolve("o-void")).resolves.toBeUndefined();
		await expect(store.capture(payment("o-void"))).resolves.toBeUndefined();
		await expect(store.resolve("o-void")).resolves.toBeUndefined();
		expect(await store.listForOrder("o-void")).toEqual([]);
		await expect(db.one("SELECT COUNT(*) AS count FROM payments")).resolves.toEqual({ count: 0 });
	});

	it("answers the first payment to a second capture, and resolve answers it too (nothing voided)", async () => {
		const { db, store } = await storeOn(paymentsMigrations, db => new PaymentsStore(db));
		const first = await store.capture(payment("o-paid"));
		expect(first).toMatchObject({ orderId: "o-paid", amount: 1234, status: "captured", cardLast4: "4242" });
		await expect(store.capture(payment("o-paid", "declined"))).resolves.toEqual(first);
		await expect(store.resolve("o-paid")).resolves.toEqual(first);
		await expect(db.one("SELECT COUNT(*) AS count FROM voided_orders")).resolves.toEqual({ count: 0 });
	});
});
