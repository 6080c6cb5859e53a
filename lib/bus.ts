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
import type { BrokerOptions, Middleware } from "moleculer";
import { usernamePasswordAuthenticator } from "nats";

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
 * The NATS transporter for a `nats://[user:password@]host:port` URL. The credentials go to the nats
 * client as an authenticator (a function), not as `url`/`user`/`pass` options: broker options are
 * readable over the bus (`$node.options`) and a function does not serialise, so no node can read
 * another's password there.
 */
export function natsTransporter(url: string): NonNullable<BrokerOptions["transporter"]> {
	const parsed = new URL(url);
	const user = decodeURIComponent(parsed.username);
	const pass = decodeURIComponent(parsed.password);
	return {
		type: "NATS",
		options: {
			servers: [parsed.host],
			maxReconnectAttempts: -1,
			...(user ? { authenticator: usernamePasswordAuthenticator(user, pass) } : {})
		}
	};
}
