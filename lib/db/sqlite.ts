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
 * Reads run on the same connection (an in-memory database exists only on its connection), so a
 * read made while a batch is open can see that batch's writes before they commit.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Logger } from "moleculer";
import sqlite3 from "sqlite3";
import type { Database, Sql, SqlValue } from "./database";

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
	/** What a job runs its statements on: the connection itself, inside the batch's transaction. */
	private readonly inBatch: Sql = { run: (s, p) => this.run(s, p), all: (s, p) => this.all(s, p), one: (s, p) => this.one(s, p) };

	private constructor(
		private readonly connection: sqlite3.Database,
		private readonly logger: Logger
	) {}

	static async open(file: string, logger: Logger): Promise<SqliteDatabase> {
		if (file !== ":memory:") mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
		const connection = await new Promise<sqlite3.Database>((resolve, reject) => {
			const db: sqlite3.Database = new sqlite3.Database(file, err => (err ? reject(err) : resolve(db)));
		});
		const db = new SqliteDatabase(connection, logger);
		// busy_timeout first: journal_mode=WAL itself needs a lock when another node holds the file.
		connection.configure("busyTimeout", BUSY_TIMEOUT_MS);
		await db.withBusyRetry(() => db.exec("PRAGMA journal_mode = WAL"));
		await db.exec("PRAGMA synchronous = NORMAL");
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

	private async runBatch(batch: Job[]): Promise<void> {
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
					const value = await job.work(this.inBatch);
					if (job.isolated) await this.exec("RELEASE job");
					outcomes.push({ ok: true, value });
				} catch (error) {
					if (job.isolated) await this.exec("ROLLBACK TO job; RELEASE job");
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
