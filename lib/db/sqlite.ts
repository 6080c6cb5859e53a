/**
 * The SQLite adapter (node-sqlite3): one connection per database file and process, its pragmas,
 * prepared statements, and the writer queue.
 *
 * Why a writer queue: SQLite takes one writer at a time per file, and a transaction per request
 * would mean SQLITE_BUSY floods under load (shared/STACK.md). Instead, writes in one process go
 * through a single queue on the one connection: the queue takes every job waiting, opens one
 * `BEGIN IMMEDIATE` transaction, runs each job inside its own SAVEPOINT (so one job's failure rolls
 * back only that job; a job of a single statement needs none), and commits them together. Callers
 * are answered only after the COMMIT, so nothing is announced before it is durable. Across
 * processes sharing a file, `BEGIN IMMEDIATE` with a busy timeout serialises the writers.
 *
 * Exactly once: a job is told success exactly when its writes were committed. Some errors make
 * SQLite roll the whole transaction back by itself (disk full, I/O error, `OR ROLLBACK`), taking
 * the batch's earlier jobs with it, and a statement run after that would commit on its own. So
 * after any failed statement of a batch the queue asks SQLite whether the transaction is still
 * open; if not, the batch stops there: the job that failed is told so (its later statements are
 * refused), the jobs before it that had succeeded are run again in a fresh transaction with the
 * ones after it, and those that had failed stay failed. Each retry has one job fewer, so it ends.
 * A job without a savepoint that throws after a statement of its own succeeded is handled the same
 * way (rolling the whole transaction back is the only way to undo that statement).
 *
 * Reads run on the same connection (an in-memory database exists only on its connection), so a
 * read made while a batch is open can see that batch's writes before they commit.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Logger } from "moleculer";
import sqlite3 from "sqlite3";
import type { Database, Sql, SqlValue } from "./database";
import type { Synchronous } from "./sqlite-url";

/** How many queued write jobs share one commit at most. */
const MAX_BATCH = 64;
const BUSY_TIMEOUT_MS = 10_000;

type Job = {
	work: (sql: Sql) => Promise<unknown>;
	/** Needs its own savepoint (several writes that must stand or fall together). */
	isolated: boolean;
	resolve: (value: unknown) => void;
	reject: (reason: unknown) => void;
};

/** `$1, $2, ...` are named parameters to SQLite: bind them by name, whatever order they appear in. */
function bind(params: readonly SqlValue[]): Record<string, SqlValue> {
	const bound: Record<string, SqlValue> = {};
	params.forEach((value, i) => (bound[`$${i + 1}`] = value));
	return bound;
}

function isBusyError(err: unknown): boolean {
	return /SQLITE_BUSY|database is locked/i.test(err instanceof Error ? err.message : String(err));
}

export class SqliteDatabase implements Database {
	readonly dialect = "sqlite";
	private readonly queue: Job[] = [];
	private draining = false;
	private closing: Promise<void> | null = null;
	/** Prepared once per SQL text: a store's statements are a handful of constants. */
	private readonly statements = new Map<string, Promise<sqlite3.Statement>>();
	/** Set when SQLite rolled the open batch's transaction back by itself: the error that did it. */
	private lost: { error: unknown } | null = null;
	/** How many statements of the running job have succeeded. */
	private statementsOfJob = 0;
	/** What a job runs its statements on: the connection itself, inside the batch's transaction. */
	private readonly inBatch: Sql = {
		run: (s, p) => this.inTransaction(() => this.run(s, p)),
		all: <Row extends object>(s: string, p?: readonly SqlValue[]) => this.inTransaction(() => this.all<Row>(s, p)),
		one: <Row extends object>(s: string, p?: readonly SqlValue[]) => this.inTransaction(() => this.one<Row>(s, p))
	};

	private constructor(
		private readonly connection: sqlite3.Database,
		private readonly logger: Logger
	) {}

	static async open(file: string, logger: Logger, synchronous: Synchronous = "full"): Promise<SqliteDatabase> {
		if (file !== ":memory:") mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
		const connection = await new Promise<sqlite3.Database>((resolve, reject) => {
			const db: sqlite3.Database = new sqlite3.Database(file, err => (err ? reject(err) : resolve(db)));
		});
		const db = new SqliteDatabase(connection, logger);
		// busy_timeout first: journal_mode=WAL itself needs a lock when another node holds the file.
		connection.configure("busyTimeout", BUSY_TIMEOUT_MS);
		await db.withBusyRetry(() => db.exec("PRAGMA journal_mode = WAL"));
		await db.exec(`PRAGMA synchronous = ${synchronous.toUpperCase()}`);
		await db.exec("PRAGMA foreign_keys = ON");
		return db;
	}

	async run(statement: string, params: readonly SqlValue[] = []): Promise<number> {
		const prepared = await this.prepared(statement);
		return new Promise((resolve, reject) =>
			prepared.run(bind(params), function (this: sqlite3.RunResult, err: Error | null) {
				if (err) reject(err);
				else resolve(this.changes);
			})
		);
	}

	async all<Row extends object>(statement: string, params: readonly SqlValue[] = []): Promise<Row[]> {
		const prepared = await this.prepared(statement);
		return new Promise((resolve, reject) => prepared.all(bind(params), (err: Error | null, rows: Row[]) => (err ? reject(err) : resolve(rows))));
	}

	async one<Row extends object>(statement: string, params: readonly SqlValue[] = []): Promise<Row | undefined> {
		return (await this.all<Row>(statement, params))[0];
	}

	write<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
		return this.enqueue(work, false);
	}

	transaction<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
		return this.enqueue(work, true);
	}

	writeLocked<T>(_key: string, work: (sql: Sql) => Promise<T>): Promise<T> {
		// One job at a time already: no other job can run between its statements.
		return this.enqueue(work, false);
	}

	async lock(): Promise<void> {
		// The writer queue and BEGIN IMMEDIATE already run one write transaction at a time.
	}

	containsText(column: string, placeholder: string): string {
		return `instr(lower(${column}), lower(${placeholder})) > 0`;
	}

	close(): Promise<void> {
		this.closing ??= (async () => {
			while (this.draining || this.queue.length > 0) await new Promise(resolve => setTimeout(resolve, 10));
			// SQLite refuses to close a connection with statements still prepared on it.
			const statements = await Promise.allSettled(this.statements.values());
			const compiled = statements.flatMap(prepared => (prepared.status === "fulfilled" ? [prepared.value] : []));
			await Promise.all(compiled.map(statement => new Promise<void>(resolve => statement.finalize(() => resolve()))));
			this.statements.clear();
			await new Promise<void>((resolve, reject) => this.connection.close(err => (err ? reject(err) : resolve())));
		})();
		return this.closing;
	}

	/** Prepared once per SQL text; a statement that fails to prepare is not kept (the next call tries again). */
	private prepared(statement: string): Promise<sqlite3.Statement> {
		let prepared = this.statements.get(statement);
		if (!prepared) {
			prepared = new Promise((resolve, reject) => {
				const compiled: sqlite3.Statement = this.connection.prepare(statement, err => {
					if (!err) return resolve(compiled);
					this.statements.delete(statement);
					reject(err);
				});
			});
			this.statements.set(statement, prepared);
		}
		return prepared;
	}

	/** Transaction control and pragmas: not prepared (they are few, and some cannot be). */
	private exec(statement: string): Promise<void> {
		return new Promise((resolve, reject) => this.connection.exec(statement, err => (err ? reject(err) : resolve())));
	}

	private enqueue<T>(work: (sql: Sql) => Promise<T>, isolated: boolean): Promise<T> {
		return new Promise<T>((resolve, reject) => {
			this.queue.push({ work, isolated, resolve: resolve as (value: unknown) => void, reject });
			void this.drain();
		});
	}

	private async drain(): Promise<void> {
		if (this.draining) return;
		this.draining = true;
		try {
			while (this.queue.length > 0) await this.runBatch(this.queue.splice(0, MAX_BATCH));
		} finally {
			this.draining = false;
		}
	}

	/** Runs a batch until every job of it is answered (see "Exactly once" above). */
	private async runBatch(batch: Job[]): Promise<void> {
		let pending = batch;
		while (pending.length > 0) pending = await this.runInOneTransaction(pending);
	}

	/** Runs the jobs in one transaction and answers them; answers the jobs to run again when SQLite rolled it back. */
	private async runInOneTransaction(batch: Job[]): Promise<Job[]> {
		// The first job's savepoint goes with the BEGIN (one trip to the thread pool, not two): a busy
		// BEGIN runs nothing after it, so the pair is retried whole.
		const begin = batch[0].isolated ? "BEGIN IMMEDIATE; SAVEPOINT job" : "BEGIN IMMEDIATE";
		try {
			await this.withBusyRetry(() => this.exec(begin));
		} catch (err) {
			// The BEGIN may have succeeded and the savepoint failed: end what is open.
			await this.exec("ROLLBACK").catch(() => undefined);
			for (const job of batch) job.reject(err);
			return [];
		}

		this.lost = null;
		const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
		/**
		 * Transaction control not sent yet: a job's `RELEASE job` waits for the next savepoint or the
		 * COMMIT and goes with it. A job without a savepoint that runs meanwhile runs inside the
		 * released-to-be savepoint, which RELEASE then merges into the transaction all the same.
		 */
		let deferred: string[] = [];
		try {
			for (const [i, job] of batch.entries()) {
				if (job.isolated && i > 0) {
					await this.exec([...deferred, "SAVEPOINT job"].join("; "));
					deferred = [];
				}
				this.statementsOfJob = 0;
				let outcome: (typeof outcomes)[number];
				try {
					outcome = { ok: true, value: await job.work(this.inBatch) };
				} catch (error) {
					outcome = { ok: false, error };
				}
				// A job without a savepoint that failed after a statement of its own succeeded: only
				// rolling the whole transaction back undoes that statement.
				const undoable = !job.isolated && !outcome.ok && this.statementsOfJob > 0;
				const lost = this.takeLost();
				if (lost || undoable) {
					// This job took the transaction down: it fails, and what ran before it is gone.
					const cause = lost ? lost.error : (outcome as { error: unknown }).error;
					if (lost) this.logger.warn(`SQLite rolled a write transaction back by itself (${String(cause)}); running the other jobs again`);
					// Ends what is left: the transaction, or the one the probe opened.
					await this.exec("ROLLBACK").catch(() => undefined);
					job.reject(cause);
					const again: Job[] = [];
					batch.slice(0, i).forEach((earlier, j) => {
						const earlierOutcome = outcomes[j];
						if (earlierOutcome.ok) again.push(earlier);
						else earlier.reject(earlierOutcome.error);
					});
					return [...again, ...batch.slice(i + 1)];
				}
				if (job.isolated) {
					// A failed job is undone at once, before another job's statements run.
					if (outcome.ok) deferred.push("RELEASE job");
					else await this.exec("ROLLBACK TO job; RELEASE job");
				}
				outcomes.push(outcome);
			}
			await this.exec([...deferred, "COMMIT"].join("; "));
		} catch (err) {
			// The connection itself failed (a savepoint or the COMMIT): nothing of this batch is kept.
			this.lost = null;
			this.logger.error("A write transaction failed and was rolled back:", err);
			await this.exec("ROLLBACK").catch(() => undefined);
			for (const job of batch) job.reject(err);
			return [];
		}

		batch.forEach((job, i) => {
			const outcome = outcomes[i];
			if (outcome.ok) job.resolve(outcome.value);
			else job.reject(outcome.error);
		});
		return [];
	}

	/** What `lost` says, clearing it. */
	private takeLost(): { error: unknown } | null {
		const lost = this.lost;
		this.lost = null;
		return lost;
	}

	/**
	 * A job's statement inside the batch. After it fails, checks that the transaction is still open;
	 * once SQLite has rolled it back, no further statement runs (it would commit on its own).
	 */
	private async inTransaction<T>(statement: () => Promise<T>): Promise<T> {
		if (this.lost) throw this.lost.error;
		try {
			const result = await statement();
			this.statementsOfJob++;
			return result;
		} catch (err) {
			if (!this.lost && !(await this.transactionIsOpen())) this.lost = { error: err };
			throw err;
		}
	}

	/**
	 * node-sqlite3 does not expose `sqlite3_get_autocommit`: a plain `BEGIN` fails inside a
	 * transaction and succeeds outside one. Any other answer counts as "not open" (the batch is
	 * then rolled back and retried, which is right either way).
	 */
	private async transactionIsOpen(): Promise<boolean> {
		try {
			await this.exec("BEGIN");
		} catch (err) {
			return /within a transaction/i.test(err instanceof Error ? err.message : String(err));
		}
		return false;
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
