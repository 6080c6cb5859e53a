/**
 * Schema changes as code: each store lists its migrations (files under its service's
 * `migrations/` folder), and umzug applies the ones a database has not seen yet, at start.
 *
 * The whole run is one transaction with the migrations' own bookkeeping inside it, so two nodes
 * starting at once on one database apply each migration once: on SQLite the writer lock, on
 * PostgreSQL an advisory lock, makes the second wait and then find nothing left to do. A migration
 * that fails rolls back every change of the run, bookkeeping included.
 */
import type { Logger } from "moleculer";
import { Umzug, type RunnableMigration, type UmzugStorage } from "umzug";
import type { Database, DialectName, Sql } from "./database";

/** What a migration gets: statements inside the run's transaction, and the dialect for the rare DDL that differs. */
export interface MigrationContext {
	sql: Sql;
	dialect: DialectName;
}

export type Migration = RunnableMigration<MigrationContext>;

const TABLE = "schema_migrations";

/** umzug's record of what ran, in the database itself and inside the run's transaction. */
function storageIn(sql: Sql): UmzugStorage<MigrationContext> {
	return {
		async executed() {
			const rows = await sql.all<{ name: string }>(`SELECT name FROM ${TABLE} ORDER BY name`);
			return rows.map(row => row.name);
		},
		async logMigration({ name }) {
			await sql.run(`INSERT INTO ${TABLE} (name, run_at) VALUES ($1, $2)`, [name, new Date().toISOString()]);
		},
		async unlogMigration({ name }) {
			await sql.run(`DELETE FROM ${TABLE} WHERE name = $1`, [name]);
		}
	};
}

/** Applies the pending migrations; answers the names of those it applied. */
export async function migrate(db: Database, migrations: Migration[], logger: Logger): Promise<string[]> {
	return db.transaction(async sql => {
		await db.lock(sql, TABLE);
		await sql.run(`CREATE TABLE IF NOT EXISTS ${TABLE} (name VARCHAR(200) PRIMARY KEY, run_at VARCHAR(30) NOT NULL)`);
		const umzug = new Umzug<MigrationContext>({
			migrations,
			context: { sql, dialect: db.dialect },
			storage: storageIn(sql),
			logger: {
				info: event => (event.event === "migrated" ? logger.info(`Migration applied: ${String(event.name)}`) : undefined),
				warn: event => logger.warn("Migrations:", event),
				error: event => logger.error("Migrations:", event),
				debug: event => logger.debug("Migrations:", event)
			}
		});
		return (await umzug.up()).map(migration => migration.name);
	});
}
