/**
 * The PostgreSQL adapter (node-postgres): a pool per database, statements with bound `$n`
 * parameters, transactions on one pooled client, advisory locks.
 */
import type { Logger } from "moleculer";
import pg from "pg";
import type { Database, Sql, SqlValue } from "./database";

const INT8_OID = 20;

/** Counts and BIGINT columns (cents, stock) as numbers: every value the shop keeps fits in 2^53. */
const types = {
	getTypeParser: ((oid: number, format?: "text" | "binary") =>
		oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser
};

/** Statements on one queryable: the pool (autocommit) or a client inside a transaction. */
function sqlOn(queryable: pg.Pool | pg.PoolClient): Sql {
	return {
		async run(statement, params = []) {
			return (await queryable.query(statement, params as SqlValue[])).rowCount ?? 0;
		},
		async all<Row extends object>(statement: string, params: readonly SqlValue[] = []) {
			return (await queryable.query<Row>(statement, params as SqlValue[])).rows;
		},
		async one<Row extends object>(statement: string, params: readonly SqlValue[] = []) {
			return (await queryable.query<Row>(statement, params as SqlValue[])).rows[0] as Row | undefined;
		}
	};
}

export class PostgresDatabase implements Database {
	readonly dialect = "postgres";
	private readonly direct: Sql;
	private closing: Promise<void> | null = null;

	private constructor(
		private readonly pool: pg.Pool,
		private readonly logger: Logger
	) {
		this.direct = sqlOn(pool);
	}

	static async open(url: string, logger: Logger): Promise<PostgresDatabase> {
		const pool = new pg.Pool({ connectionString: url, max: 10, idleTimeoutMillis: 10_000, types });
		// A dropped idle connection must not crash the process: the pool replaces it.
		pool.on("error", err => logger.warn(`PostgreSQL connection lost (${err.message}); the pool reconnects`));
		await pool.query("SELECT 1");
		return new PostgresDatabase(pool, logger);
	}

	run(statement: string, params?: readonly SqlValue[]): Promise<number> {
		return this.direct.run(statement, params);
	}

	all<Row extends object>(statement: string, params?: readonly SqlValue[]): Promise<Row[]> {
		return this.direct.all<Row>(statement, params);
	}

	one<Row extends object>(statement: string, params?: readonly SqlValue[]): Promise<Row | undefined> {
		return this.direct.one<Row>(statement, params);
	}

	write<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
		return work(this.direct);
	}

	async transaction<T>(work: (sql: Sql) => Promise<T>): Promise<T> {
		const client = await this.pool.connect();
		try {
			await client.query("BEGIN");
			const result = await work(sqlOn(client));
			await client.query("COMMIT");
			client.release();
			return result;
		} catch (err) {
			try {
				await client.query("ROLLBACK");
				client.release();
			} catch (rollbackError) {
				// The connection is broken: the pool must not hand it out again.
				client.release(rollbackError as Error);
			}
			throw err;
		}
	}

	writeLocked<T>(key: string, work: (sql: Sql) => Promise<T>): Promise<T> {
		return this.transaction(async sql => {
			await this.lock(sql, key);
			return work(sql);
		});
	}

	async lock(sql: Sql, key: string): Promise<void> {
		await sql.all("SELECT pg_advisory_xact_lock(hashtext($1))", [key]);
	}

	containsText(column: string, placeholder: string): string {
		return `strpos(lower(${column}), lower(${placeholder})) > 0`;
	}

	close(): Promise<void> {
		this.closing ??= this.pool.end().catch(err => this.logger.warn(`Closing the PostgreSQL pool: ${(err as Error).message}`));
		return this.closing;
	}
}
