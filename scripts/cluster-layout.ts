/**
 * The multi-node layout of the shop on one machine: two nodes of every service, gateways included,
 * so that any one node can restart unseen (a rolling restart); shared DATA_DIR: same SQLite files,
 * WAL, atomic conditional updates.
 * docker/docker-compose.yml describes the same layout with one container per node.
 */

export interface ClusterNode {
	nodeID: string;
	/** Folder names of services/ (checked against SERVICE_NAMES by a unit test). */
	services: string[];
}

export const CLUSTER_LAYOUT: ClusterNode[] = [
	{ nodeID: "users-1", services: ["users"] },
	{ nodeID: "users-2", services: ["users"] },
	{ nodeID: "inventory-1", services: ["inventory"] },
	{ nodeID: "inventory-2", services: ["inventory"] },
	{ nodeID: "orders-1", services: ["orders"] },
	{ nodeID: "orders-2", services: ["orders"] },
	{ nodeID: "payments-1", services: ["payments"] },
	{ nodeID: "payments-2", services: ["payments"] },
	{ nodeID: "api-1", services: ["api"] },
	{ nodeID: "api-2", services: ["api"] }
];
