/**
 * Gives a service its own database (`$DATA_DIR/<service>.sqlite`, or `<SERVICE>_DB`), with its
 * models defined, connected and synced before the service's own `started` runs, and closed after
 * it stops. See lib/database.ts for the write path.
 */
import type { ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { Sequelize } from "sequelize";
import { shopConfig, type DataServiceName } from "../lib/config";
import { Database } from "../lib/database";

/** What the mixin adds to a service's `this`. */
export interface DbVars<Models> {
	db: Database;
	models: Models;
}

export function createDbMixin<Models>(
	service: DataServiceName,
	defineModels: (sequelize: Sequelize) => Models
): Partial<ServiceSchema> {
	const mixin: ServiceSchema<ServiceSettingSchema, object, DbVars<Models>> = {
		name: `${service}-db`,
		created() {
			this.db = new Database(shopConfig().dbUrl(service), this.logger);
			this.models = defineModels(this.db.sequelize);
		},
		async started() {
			await this.db.connect();
			this.logger.info(`Database ready (${this.db.dialect}).`);
		},
		async stopped() {
			await this.db.close();
		}
	};
	// A mixin's `this` is the service that mixes it in; Moleculer's types cannot say so.
	return mixin as unknown as Partial<ServiceSchema>;
}
