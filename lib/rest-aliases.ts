/**
 * Builds the gateway's alias table from the `rest` declarations on the services' own actions.
 *
 * Why not moleculer-web's `autoAliases`: auto aliases exist only while their service is alive, so
 * a call to a service whose nodes are all down would answer 404 instead of the contract's 503, and
 * routes appear only some time after start. Reading the schemas gives a static table that still
 * has one source of truth: the action's `rest` line.
 */

export interface RestAlias {
	/** e.g. "POST /users/register" */
	route: string;
	/** e.g. "users.register" */
	action: string;
}

/** The parts of a service schema the table is made from. */
export interface RestSource {
	name: string;
	settings?: object;
	actions?: object;
}

export function restAliases(schemas: RestSource[]): RestAlias[] {
	const aliases: RestAlias[] = [];
	for (const schema of schemas) {
		const base = (schema.settings as { rest?: string } | undefined)?.rest ?? `/${schema.name}`;
		for (const [actionName, action] of Object.entries(schema.actions ?? {})) {
			const rest = typeof action === "object" && action !== null ? (action as { rest?: unknown }).rest : undefined;
			if (typeof rest !== "string") continue;
			const [method, path = "/"] = rest.trim().split(/\s+/);
			const fullPath = (base + (path === "/" ? "" : path)).replace(/\/{2,}/g, "/");
			aliases.push({ route: `${method.toUpperCase()} ${fullPath}`, action: `${schema.name}.${actionName}` });
		}
	}
	return aliases;
}
