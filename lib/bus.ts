/**
 * How a node joins the shop's bus: the NATS connection (credentials out of the broker options) and
 * Moleculer's built-in transit encryption. Used by moleculer.config.ts and by the test brokers that
 * join a shop (observer, rogues), so they join exactly as a node does.
 *
 * Nothing here is hand-made crypto: the packets are encrypted by Moleculer's
 * `Middlewares.Transmit.Encryption` (AES-256-CBC from node:crypto); this file only picks its key and
 * IV. That middleware takes one fixed IV for every packet (it has no per-packet IV and no MAC): see
 * README "Security and trust / The message bus" for what that gives and what it does not.
 */
import { hkdfSync } from "node:crypto";
import * as moleculer from "moleculer";
import type { BrokerOptions, Middleware, ServiceBroker } from "moleculer";
import { Events, usernamePasswordAuthenticator, type NatsConnection } from "nats";
import { parseNatsServers } from "./config";

/** Moleculer exports its built-in middlewares at run time; its type declarations leave them out. */
interface BuiltInMiddlewares {
	Transmit: { Encryption(password: Buffer, algorithm: string, iv: Buffer): Middleware };
}
const { Middlewares } = moleculer as unknown as { Middlewares: BuiltInMiddlewares };

/** The cipher given to Moleculer's encryption middleware; TRANSIT_KEY is its 32-byte key. */
export const TRANSIT_CIPHER = "aes-256-cbc";

/**
 * The middleware's IV: fixed for a key (every node must use the same one), derived from the key with
 * HKDF so that an operator manages one secret, and two shops with different keys never share an IV.
 */
export function transitIv(key: Buffer): Buffer {
	return Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), "moleculer-shop transit iv", 16));
}

/** Moleculer's built-in transit encryption with the shop's key. */
export function transitEncryption(key: Buffer): Middleware {
	if (key.length !== 32) throw new Error("the transit key must be 32 bytes");
	return Middlewares.Transmit.Encryption(key, TRANSIT_CIPHER, transitIv(key));
}

/**
 * How fast a node finds its way back to the bus when it loses its nats-server (README "Many nodes on
 * NATS"). With several servers (a NATS cluster) the client moves on to the next one at once; these
 * bound the rest:
 * - reconnectTimeWait: the pause before the same server is tried again (the nats client's default is
 *   2 s; a restarted single server is found within half a second instead);
 * - pingInterval × maxPingOut: a server that vanished without closing the connection (its host gone,
 *   a partition) is given up after about 4 s (default: 2 × 2 min), the bus's own heartbeat timeout;
 * - maxReconnectAttempts -1: never give up.
 * The nats client subscribes again by itself after a reconnect and buffers what is published
 * meanwhile; Moleculer then sees the node's heartbeats again (peers that had marked it gone ask it
 * for its INFO and take it back).
 */
export const NATS_RECONNECT = { reconnectTimeWait: 500, pingInterval: 2000, maxPingOut: 2, maxReconnectAttempts: -1 } as const;

/**
 * The NATS transporter for TRANSPORTER: one `nats://[user:password@]host:port` URL or a comma-separated
 * list of them (the servers of a NATS cluster; the client picks them in random order, which spreads the
 * nodes over the servers). The credentials go to the nats client as an authenticator (a function), not
 * as `url`/`user`/`pass` options: broker options are readable over the bus (`$node.options`) and a
 * function does not serialise, so no node can read another's password there. `name` (the node id)
 * names the connection in nats-server's monitoring (`/connz`).
 */
export function natsTransporter(transporter: string, options: { name?: string } = {}): NonNullable<BrokerOptions["transporter"]> {
	const { servers, user, password } = parseNatsServers(transporter);
	return {
		type: "NATS",
		options: {
			servers,
			...NATS_RECONNECT,
			...(options.name ? { name: options.name } : {}),
			...(user ? { authenticator: usernamePasswordAuthenticator(user, password) } : {})
		}
	};
}

/**
 * Moleculer's NATS transporter leaves reconnecting to the nats client and tells Moleculer nothing (it
 * logs the client's status at debug only), so a node that moved to another nats-server skips what
 * Moleculer's other transporters do after a reconnect. This hands the reconnect to the transit as
 * they do (`onConnected(true)`): the node's INFO is sent again, and `$transporter.connected` (with
 * `wasReconnect`) empties every cache that listens for it (Moleculer's cachers, the gateway's product
 * cache), since invalidation events may have been missed while away. And it logs both ends at
 * warn/info on the node that moved: which server it lost, which one it is on again, how long it took.
 */
export function natsReconnects(): Middleware {
	return {
		name: "NatsReconnects",
		async started(broker: ServiceBroker) {
			// The transporter's own client (moleculer/src/transporters/nats.js keeps it as `client`).
			const tx = broker.transit?.tx as { client?: NatsConnection; onConnected(wasReconnect: boolean): Promise<void> } | undefined;
			const client = tx?.client;
			if (!tx || !client) return;
			const logger = broker.getLogger("nats");
			void (async () => {
				let lostAt = 0;
				for await (const status of client.status()) {
					if (broker.stopping) return;
					if (status.type === Events.Disconnect) {
						lostAt = Date.now();
						logger.warn(`Lost the connection to nats-server ${String(status.data)}: reconnecting to the servers left`);
					} else if (status.type === Events.Reconnect) {
						logger.info(`Connected again, to nats-server ${String(status.data)}, ${Date.now() - lostAt} ms after the loss`);
						tx.onConnected(true).catch((err: unknown) => logger.warn(`After the reconnect: ${err instanceof Error ? err.message : String(err)}`));
					}
				}
			})();
		}
	};
}
