/**
 * What a service's store sees of its database, whatever the dialect: bound statements, one atomic
 * write, one transaction. The adapters (sqlite.ts, postgres.ts) are the only files that know a
 * driver; migrations.ts runs a store's schema changes.
 *
 * Statements use numbered placeholders `$1, $2, ...` on both dialects and every value is bound,
 * never written into the SQL text. Values are strings, numbers or null: a store turns dates into
 * ISO strings and objects into JSON itself, so that what is stored is what it chose.
 */
import type { Logger } from "moleculer";
import { PostgresDatabase } from "./postgres";
import { SqliteDatabase } from "./sqlite";
import { parseSqliteTarget } from "./sqlite-url";

export type DialectName = "sqlite" | "postgres";
export type SqlValue = string | number | null;

/** `count` bound parameters for an `IN (...)` list, numbered from `first`: `$2, $3, $4`. */
export function placeholders(count: number, first = 1): string {
	return Array.from({ length: count }, (_, i) => `$${first + i}`).join(", ");
}

/** Runs statements: on the database itself, or inside a write or transaction. */
export interface Sql {
	/** A writing statement; answers how many rows it changed. */
	run(statement: string, params?: readonly SqlValue[]): Promise<number>;
	/** A query; answers its rows, with the columns' names as keys. */
	all<Row extends object>(statement: string, params?: readonly SqlValue[]): Promise<Row[]>;
	/** A query's first row, if any. */
	one<Row extends object>(statement: string, params?: readonly SqlValue[]): Promise<Row | undefined>;
}

/** A service's own database: reads on it directly, writes through `write` or `transaction`. */
export interface Database extends Sql {
	readonly dialect: DialectName;
	/**
	 * Work with at most ONE writing statement (plus reads): a single statement is atomic by itself.
	 * On SQLite it shares a batch's commit; on PostgreSQL it autocommits.
	 */
	write<T>(work: (sql: Sql) => Promise<T>): Promise<T>;
	/**
	 * Several statements that commit together or not at all (a throw rolls them back).
	 * `work` must only talk to this database: on SQLite it holds the write lock.
	 */
	transaction<T>(work: (sql: Sql) => Promise<T>): Promise<T>;
	/**
	 * Work that must not interleave with a transaction holding `key` (see `lock`), in `write`'s shape:
	 * one writing statement that may fail, plus reads, plus writes that only an error of the database
	 * itself could fail. On SQLite it is a `write` (the writer queue runs one job at a time, and a job
	 * that fails after a statement of its own succeeded is rolled back whole), so it needs no
	 * savepoint: a trip to the driver fewer than `transaction`. On PostgreSQL it is a transaction
	 * that takes the lock first.
	 */
	writeLocked<T>(key: string, work: (sql: Sql) => Promise<T>): Promise<T>;
	/**
	 * Inside a transaction: waits until no other transaction holds `key`, and holds it until commit.
	 * PostgreSQL needs it where two transactions would each check one table and write another;
	 * SQLite's writers already run one at a time.
	 */
	lock(sql: Sql, key: string): Promise<void>;
	/** An SQL condition: `column` contains the text bound at `placeholder`, ignoring case. */
	containsText(column: string, placeholder: string): string;
	/** Lets queued writes commit, then closes. Safe to call twice. */
	close(): Promise<void>;
}

/**
 * Opens the database a URL names (`sqlite:<file>`, `sqlite::memory:`, `postgres://...`). A SQLite
 * URL may end in `?synchronous=normal` to trade the last commits before a power cut for speed
 * (the default is `full`; see sqlite.ts).
 */
export async function openDatabase(url: string, logger: Logger): Promise<Database> {
	if (url.startsWith("sqlite:")) {
		const { file, synchronous } = parseSqliteTarget(url.slice("sqlite:".length));
		return SqliteDatabase.open(file, logger, synchronous);
	}
	return PostgresDatabase.open(url, logger);
}
