/**
 * Password hashing with scrypt (node:crypto): slow on purpose, salted, compared in constant time.
 *
 * Stored as `scrypt$N$r$p$salt$hash` (base64 salt and hash), so a hash of any cost still verifies
 * after the cost is raised; `needsRehash` tells the users service to store a new one at the next
 * successful login.
 *
 * scrypt runs on libuv's thread pool, which node-sqlite3 (and fs, and dns.lookup) share: four
 * threads unless UV_THREADPOOL_SIZE says otherwise. Unbounded, a burst of registrations or logins
 * takes every thread and each database statement waits behind whole hashes. So at most
 * HASH_CONCURRENCY hashes run at once (half the pool), the rest wait in a short queue; a queue
 * that is full, or a hash that could no longer finish before its caller gives up, is answered 503
 * at once instead of being computed for nobody.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { Errors } from "moleculer";

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const R = 8;
const P = 1;

/**
 * log2 of scrypt's N for new hashes: 2^17 with r=8, p=1 is OWASP's first recommendation (128 MiB
 * and ~0.3-0.7 s per hash on our 2-core machines). PASSWORD_HASH_COST (lib/config.ts) may change it.
 */
export const DEFAULT_PASSWORD_HASH_COST = 17;
/** Stored hashes above this are refused unverified: never ours, and they would ask for gigabytes. */
const MAX_LOG2_N = 20;

/** libuv's pool, as this process will have it (read before the pool starts, so this is what it got). */
const THREAD_POOL_SIZE = Math.max(1, Math.trunc(Number(process.env.UV_THREADPOOL_SIZE)) || 4);
/** Hashes run at once: half the pool, so the databases always keep threads of their own. */
export const HASH_CONCURRENCY = Math.max(1, Math.floor(THREAD_POOL_SIZE / 2));
/** Hashes that may wait for a slot; beyond that a caller gets 503 at once instead of a timeout later. */
const MAX_WAITING = 64;
/**
 * A hash must finish within this long of being asked for: the broker's 5 s request timeout, less a
 * margin for the reads and the write around it. One that could not (by how long hashes of its cost
 * have lately taken) is not started: its caller gets a prompt 503 rather than a timeout.
 */
const BUDGET_MS = 4500;

interface Waiter {
	resolve(): void;
	reject(err: Error): void;
	/** When the hash must be done, and how long one of its cost takes. */
	deadline: number;
	expectedMs: number;
}
let running = 0;
const waiting: Waiter[] = [];

/** Recent duration of a hash per N (a moving average), to judge whether a waiter can still make it. */
const typicalMs = new Map<number, number>();
function recordDuration(n: number, ms: number): void {
	const before = typicalMs.get(n);
	typicalMs.set(n, before === undefined ? ms : before * 0.8 + ms * 0.2);
}

const busy = () => new Errors.MoleculerError("Too many password checks at once; please try again shortly", 503, "SERVICE_NOT_AVAILABLE", { service: "users" });

/** Runs a hash of scrypt N = `n` in one of the HASH_CONCURRENCY slots, waiting (boundedly) for one. */
async function inHashSlot<T>(n: number, work: () => Promise<T>): Promise<T> {
	if (running < HASH_CONCURRENCY) {
		running++;
	} else {
		if (waiting.length >= MAX_WAITING) throw busy();
		const expectedMs = typicalMs.get(n) ?? 0;
		await new Promise<void>((resolve, reject) => waiting.push({ resolve, reject, deadline: Date.now() + BUDGET_MS, expectedMs }));
	}
	const started = Date.now();
	try {
		return await work();
	} finally {
		recordDuration(n, Date.now() - started);
		// Hand the slot straight to the next waiter that can still finish in time; the others are told at once.
		let next: Waiter | undefined;
		while ((next = waiting.shift()) && Date.now() + next.expectedMs > next.deadline) next.reject(busy());
		if (next) next.resolve();
		else running--;
	}
}

/** Hashes running and waiting now (for tests and metrics). */
export function hashingLoad(): { running: number; waiting: number } {
	return { running, waiting: waiting.length };
}

interface ScryptParams {
	N: number;
	r: number;
	p: number;
}

/** Enough memory for these parameters (scrypt needs 128·N·r bytes, plus a little). */
const maxmemFor = ({ N, r, p }: ScryptParams) => 128 * N * r + 128 * r * p + 16 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
	const options: ScryptOptions = { ...params, maxmem: maxmemFor(params) };
	return inHashSlot(
		params.N,
		() =>
			new Promise<Buffer>((resolve, reject) =>
				scryptCallback(password.normalize("NFC"), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key)))
			)
	);
}

/** A new hash of `password` at scrypt N = 2^cost. */
export async function hashPassword(password: string, cost: number = DEFAULT_PASSWORD_HASH_COST): Promise<string> {
	const salt = randomBytes(SALT_LENGTH);
	const params = { N: 2 ** cost, r: R, p: P };
	const key = await scrypt(password, salt, params);
	return ["scrypt", params.N, params.r, params.p, salt.toString("base64"), key.toString("base64")].join("$");
}

interface ParsedHash extends ScryptParams {
	salt: Buffer;
	hash: Buffer;
}

const isPowerOfTwo = (n: number) => Number.isInteger(n) && n > 1 && (n & (n - 1)) === 0;

/** The parts of a stored hash, or null when it is not one this module could have written. */
function parse(stored: string): ParsedHash | null {
	const [scheme, n, r, p, salt, hash, ...rest] = stored.split("$");
	if (scheme !== "scrypt" || !salt || !hash || rest.length > 0) return null;
	const params = { N: Number(n), r: Number(r), p: Number(p) };
	if (!isPowerOfTwo(params.N) || params.N > 2 ** MAX_LOG2_N) return null;
	if (!Number.isInteger(params.r) || params.r < 1 || params.r > 32 || !Number.isInteger(params.p) || params.p < 1 || params.p > 16) return null;
	return { ...params, salt: Buffer.from(salt, "base64"), hash: Buffer.from(hash, "base64") };
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
	const parsed = parse(stored);
	if (!parsed || parsed.hash.length === 0) return false;
	const key = await scrypt(password, parsed.salt, parsed);
	return key.length === parsed.hash.length && timingSafeEqual(key, parsed.hash);
}

/** True when `stored` is cheaper than a new hash at `cost` would be: store a new one after a successful login. */
export function needsRehash(stored: string, cost: number): boolean {
	const parsed = parse(stored);
	return parsed !== null && parsed.N < 2 ** cost;
}

const dummyHashes = new Map<number, Promise<string>>();
/**
 * A hash to verify against when the email is unknown, so that a wrong email costs as long as a
 * wrong password (on an account hashed at the current cost). Made once per cost, when first needed.
 */
export function dummyHash(cost: number): Promise<string> {
	let hash = dummyHashes.get(cost);
	if (!hash) {
		hash = hashPassword(randomBytes(12).toString("hex"), cost);
		dummyHashes.set(cost, hash);
		// A failure (e.g. a full queue) is not remembered: the next caller tries again.
		hash.catch(() => dummyHashes.delete(cost));
	}
	return hash;
}
