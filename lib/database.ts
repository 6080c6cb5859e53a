/**
 * One service's database: connection, pragmas, schema sync and the write path.
 *
 * Every dialect-specific line of the project lives here, so that a service can move from the
 * embedded SQLite file to PostgreSQL by setting `<SERVICE>_DB` and nothing else.
 *
 * Why the SQLite write path is a queue: Sequelize opens a new SQLite connection for every
 * `transaction()`, which is slow, loses the connection's pragmas and, under concurrency, fails with
 * SQLITE_BUSY floods (see shared/STACK.md). Instead, writes in one process go through a single
 * queue on the one default connection: the queue takes every job waiting, opens one
 * `BEGIN IMMEDIATE` transaction, runs each job inside its own SAVEPOINT (so one job's failure rolls
 * back only that job; a job of a single statement needs none), and commits them together. Callers
 * are answered only after the COMMIT, so nothing is announced before it is durable. Across processes sharing a file, `BEGIN IMMEDIATE`
 * with a busy timeout serialises the writers.
 */
import { Op, QueryTypes, Sequelize, Transaction, UniqueConstraintError, type QueryOptions, type WhereOptions } from "sequelize";
import type { Logger } from "moleculer";

export type Dialect = "sqlite" | "postgres";

/** Options to spread into every query of a write job: they bind it to the job's transaction. */
export interface TxOptions {
	transaction?: Transaction;
}

/** The parts of node-sqlite3's Database and Statement the hot paths use. */
interface SqliteStatement {
	run(params: Record<string, unknown>, callback: (this: { changes: number }, err: Error | null) => void): void;
	all(params: Record<string, unknown>, callback: (err: Error | null, rows: never[]) => void): void;
	finalize(callback: () => void): void;
}
interface SqliteConnection {
	prepare(sql: string): SqliteStatement;
}

type Job<T> = {
	work: (tx: TxOptions) => Promise<T>;
	/** Needs its own savepoint (several writes that must stand or fall together). */
	isolated: boolean;
	resolve: (value: T) => void;
	reject: (reason: unknown) => void;
};

/** How many queued write jobs share one SQLite commit at most. */
const MAX_BATCH = 64;
const BUSY_TIMEOUT_MS = 10_000;

/** Objects and arrays go in as JSON text (Sequelize would expand an array into a list). */
function jsonParams(params: Record<string, unknown>): Record<string, unknown> {
	return Object.fromEntries(
		Object.entries(params).map(([name, value]) => [name, value !== null && typeof value === "object" && !(value instanceof Date) ? JSON.stringify(value) : value])
	);
}

/** A unique index refused a row: from Sequelize's models or from a raw statement, on either dialect. */
export function isUniqueViolation(err: unknown): boolean {
	if (err instanceof UniqueConstraintError) return true;
	const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
	return code === "SQLITE_CONSTRAINT" && typeof message === "string" && /UNIQUE|PRIMARY KEY/.test(message);
}

function isBusyError(err: unknown): boolean {
	const text = err instanceof Error ? `${err.message} ${String((err as { parent?: unknown }).parent ?? "")}` : String(err);
	return /SQLITE_BUSY|database is locked/i.test(text);
}

export class Database {
	readonly sequelize: Sequelize;
	readonly dialect: Dialect;
	private readonly queue: Job<unknown>[] = [];
	private draining = false;
	private closing: Promise<void> | null = null;
	/** Prepared once per SQL text on the writer connection (the hot statements are a handful of constants). */
	private readonly statements = new Map<string, SqliteStatement>();

	constructor(
		url: string,
		private readonly logger: Logger
	) {
		if (url.startsWith("sqlite:")) {
			this.dialect = "sqlite";
			this.sequelize = new Sequelize({
				dialect: "sqlite",
				storage: url.slice("sqlite:".length) || ":memory:",
				logging: false,
				// One connection: Sequelize's SQLite pool is a fiction, and transactions are ours.
				pool: { max: 1, min: 0 }
			});
		} else {
			this.dialect = "postgres";
			this.sequelize = new Sequelize(url, {
				dialect: "postgres",
				logging: false,
				pool: { max: 10, min: 0, idle: 10_000 }
			});
		}
	}

	/** Connects, sets the connection's pragmas and creates missing tables, safely when several nodes start at once. */
	async connect(): Promise<void> {
		await this.sequelize.authenticate();
		if (this.dialect === "sqlite") {
			// busy_timeout first: journal_mode=WAL itself needs a lock when another node holds the file.
			await this.sequelize.query(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
			await this.withBusyRetry(() => this.sequelize.query("PRAGMA journal_mode = WAL"));
			await this.sequelize.query("PRAGMA synchronous = NORMAL");
			await this.sequelize.query("PRAGMA foreign_keys = ON");
			// Inside one write transaction, a second node starting at the same moment waits instead of racing.
			await this.transaction(async () => {
				await this.sequelize.sync();
			});
		} else {
			// Two nodes creating the same tables at once: the loser's CREATE fails on PostgreSQL's
			// catalogue; by the next attempt the tables exist and sync has nothing left to do.
			for (let attempt = 1; ; attempt++) {
				try {
					await this.sequelize.sync();
					break;
				} catch (err) {
					if (attempt >= 3) throw err;
					this.logger.warn(`Creating tables raced with another node (${(err as Error).message}); trying again`);
					await new Promise(resolve => setTimeout(resolve, 200 * attempt));
				}
			}
		}
	}

	/** Lets queued writes commit, then closes. Safe to call twice (a second stop signal does). */
	close(): Promise<void> {
		this.closing ??= (async () => {
			while (this.draining || this.queue.length > 0) await new Promise(resolve => setTimeout(resolve, 10));
			// SQLite refuses to close a connection with statements still prepared on it.
			await Promise.all([...this.statements.values()].map(statement => new Promise<void>(resolve => statement.finalize(resolve))));
			this.statements.clear();
			await this.sequelize.close();
		})();
		return this.closing;
	}

	/**
	 * Runs `work` as one atomic write: all of its statements commit, or none do.
	 * `work` must only talk to this database (no remote calls): on SQLite it holds the write lock.
	 */
	transaction<T>(work: (tx: TxOptions) => Promise<T>): Promise<T> {
		if (this.dialect === "postgres") {
			return this.sequelize.transaction(transaction => work({ transaction }));
		}
		return this.enqueue(work, true);
	}

	/**
	 * Runs `work` that makes at most ONE writing statement (plus any reads): SQLite makes a single
	 * statement atomic by itself, so it shares the batch's commit without a savepoint of its own.
	 * On PostgreSQL it runs outside a transaction (autocommit).
	 */
	write<T>(work: (tx: TxOptions) => Promise<T>): Promise<T> {
		if (this.dialect === "postgres") return work({});
		return this.enqueue(work, false);
	}

	private enqueue<T>(work: (tx: TxOptions) => Promise<T>, isolated: boolean): Promise<T> {
		return new Promise<T>((resolve, reject) => {
			this.queue.push({ work, isolated, resolve, reject } as Job<unknown>);
			void this.drain();
		});
	}

	/**
	 * Hot paths: one parameterised statement (`:name` placeholders) without the ORM's per-query work,
	 * which costs ten times the statement itself on SQLite. Returns the rows changed.
	 * Dates and JSON values are written as the models write them.
	 */
	async execute(sql: string, params: Record<string, unknown>, tx: TxOptions): Promise<number> {
		if (this.dialect === "postgres") return this.changeRows(sql, jsonParams(params), tx);
		const statement = await this.prepared(sql);
		return new Promise((resolve, reject) =>
			statement.run(this.sqliteParams(params), function (this: { changes: number }, err: Error | null) {
				if (err) reject(err);
				else resolve(this.changes);
			})
		);
	}

	/** Hot paths: a parameterised SELECT without the ORM; rows as plain objects with the columns' names. */
	async select<Row extends object>(sql: string, params: Record<string, unknown>, tx: TxOptions = {}): Promise<Row[]> {
		if (this.dialect === "postgres") return this.sequelize.query<Row>(sql, { replacements: jsonParams(params), type: QueryTypes.SELECT, ...tx });
		const statement = await this.prepared(sql);
		return new Promise((resolve, reject) =>
			statement.all(this.sqliteParams(params), (err: Error | null, rows: Row[]) => (err ? reject(err) : resolve(rows)))
		);
	}

	/** A prepared statement on Sequelize's own SQLite connection (the one the writer queue's transaction is open on). */
	private async prepared(sql: string): Promise<SqliteStatement> {
		let statement = this.statements.get(sql);
		if (!statement) {
			const manager = this.sequelize.connectionManager as unknown as { getConnection(options: object): Promise<SqliteConnection> };
			statement = (await manager.getConnection({})).prepare(sql);
			this.statements.set(sql, statement);
		}
		return statement;
	}

	private sqliteParams(params: Record<string, unknown>): Record<string, unknown> {
		const bound: Record<string, unknown> = {};
		for (const [name, value] of Object.entries(params)) {
			// The models' format: "YYYY-MM-DD HH:mm:ss.SSS +00:00", so that text order is time order.
			if (value instanceof Date) bound[`:${name}`] = value.toISOString().replace("T", " ").replace("Z", " +00:00");
			else if (value !== null && typeof value === "object") bound[`:${name}`] = JSON.stringify(value);
			else bound[`:${name}`] = value;
		}
		return bound;
	}

	/** A parameterised UPDATE or DELETE through Sequelize (PostgreSQL's path of `execute`). */
	private async changeRows(sql: string, replacements: Record<string, unknown>, tx: TxOptions): Promise<number> {
		const options: QueryOptions = { replacements, type: QueryTypes.UPDATE, ...tx };
		const result = (await this.sequelize.query(sql, options)) as unknown;
		// Sequelize's PostgreSQL dialect answers [rows, rowCount].
		if (Array.isArray(result) && typeof result[1] === "number") return result[1];
		throw new Error(`Unexpected result of an UPDATE on ${this.dialect}: ${JSON.stringify(result)}`);
	}

	/**
	 * Inside a transaction: waits until no other transaction holds `key`, and holds it until commit.
	 * PostgreSQL needs it where two transactions would each check one table and write another;
	 * SQLite's writers already run one at a time.
	 */
	async serializeOn(key: string, tx: TxOptions): Promise<void> {
		if (this.dialect === "postgres") await this.sequelize.query("SELECT pg_advisory_xact_lock(hashtext(:key))", { replacements: { key }, ...tx });
	}

	/** A case-insensitive "contains" condition on a column; the text is a bound value, never a pattern. */
	containsText(column: string, text: string): WhereOptions {
		const position = this.dialect === "postgres" ? "strpos" : "instr";
		return Sequelize.where(Sequelize.fn(position, Sequelize.fn("lower", Sequelize.col(column)), text.toLowerCase()), Op.gt, 0);
	}

	private async drain(): Promise<void> {
		if (this.draining) return;
		this.draining = true;
		try {
			while (this.queue.length > 0) {
				await this.runBatch(this.queue.splice(0, MAX_BATCH));
			}
		} finally {
			this.draining = false;
		}
	}

	/** Transaction control of the writer queue (SQLite only), on the raw connection like the hot statements. */
	private async exec(sql: string): Promise<void> {
		await this.execute(sql, {}, {});
	}

	private async runBatch(batch: Job<unknown>[]): Promise<void> {
		try {
			await this.withBusyRetry(() => this.exec("BEGIN IMMEDIATE"));
		} catch (err) {
			for (const job of batch) job.reject(err);
			return;
		}

		const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
		try {
			for (const job of batch) {
				if (job.isolated) await this.exec("SAVEPOINT job");
				try {
					const value = await job.work({});
					if (job.isolated) await this.exec("RELEASE job");
					outcomes.push({ ok: true, value });
				} catch (error) {
					if (job.isolated) {
						await this.exec("ROLLBACK TO job");
						await this.exec("RELEASE job");
					}
					outcomes.push({ ok: false, error });
				}
			}
			await this.exec("COMMIT");
		} catch (err) {
			// The connection itself failed (disk full, file gone): nothing of this batch is kept.
			this.logger.error("A write transaction failed and was rolled back:", err);
			await this.exec("ROLLBACK").catch(() => undefined);
			for (const job of batch) job.reject(err);
			return;
		}

		batch.forEach((job, i) => {
			const outcome = outcomes[i];
			if (outcome.ok) job.resolve(outcome.value);
			else job.reject(outcome.error);
		});
	}

	/** Another process may hold the file's write lock for longer than the busy timeout: try again a few times. */
	private async withBusyRetry<T>(operation: () => Promise<T>, attempts = 5): Promise<T> {
		for (let attempt = 1; ; attempt++) {
			try {
				return await operation();
			} catch (err) {
				if (!isBusyError(err) || attempt >= attempts) throw err;
				this.logger.warn(`Database busy (attempt ${attempt} of ${attempts}), retrying`);
				await new Promise(resolve => setTimeout(resolve, 50 * attempt));
			}
		}
	}
}

