/** lib/passwords.ts: scrypt's cost, old hashes, and a hashing queue that leaves libuv's threads to the databases. */
import { stat } from "node:fs/promises";
import { ConfigError, loadConfig } from "../../lib/config";
import { DEFAULT_PASSWORD_HASH_COST, hashingLoad, hashPassword, HASH_CONCURRENCY, needsRehash, verifyPassword } from "../../lib/passwords";

describe("password hashing", () => {
	it("hashes with scrypt N >= 2^17 by default, the parameters in the stored format", async () => {
		expect(DEFAULT_PASSWORD_HASH_COST).toBeGreaterThanOrEqual(17);
		const stored = await hashPassword("a password");
		const [scheme, n, r, p, salt, hash] = stored.split("$");
		expect(scheme).toBe("scrypt");
		expect(Number(n)).toBe(2 ** DEFAULT_PASSWORD_HASH_COST);
		expect([Number(r), Number(p)]).toEqual([8, 1]);
		expect(Buffer.from(salt, "base64")).toHaveLength(16);
		expect(Buffer.from(hash, "base64")).toHaveLength(32);
		await expect(verifyPassword("a password", stored)).resolves.toBe(true);
		await expect(verifyPassword("a Password", stored)).resolves.toBe(false);
		expect(needsRehash(stored, DEFAULT_PASSWORD_HASH_COST)).toBe(false);
	});

	it("verifies a hash of a lower cost and says it needs re-hashing; never one of a higher cost", async () => {
		const cheap = await hashPassword("old password", 14);
		expect(cheap.split("$")[1]).toBe(String(2 ** 14));
		await expect(verifyPassword("old password", cheap)).resolves.toBe(true);
		expect(needsRehash(cheap, 17)).toBe(true);
		expect(needsRehash(cheap, 14)).toBe(false);
		expect(needsRehash(cheap, 13)).toBe(false);
	});

	it.each([["not-a-hash"], ["bcrypt$x$y"], ["scrypt$0$8$1$AAAA$AAAA"], ["scrypt$12345$8$1$AAAA$AAAA"], ["scrypt$1073741824$8$1$AAAA$AAAA"]])(
		"answers false (no throw) for a malformed or absurd stored hash: %s",
		async stored => {
			await expect(verifyPassword("whatever", stored)).resolves.toBe(false);
		}
	);

	it("keeps libuv threads free for the databases while many hashes are asked for at once", async () => {
		// node-sqlite3 runs its statements on libuv's thread pool (4 threads by default), as fs does.
		expect(HASH_CONCURRENCY).toBeLessThan(Number(process.env.UV_THREADPOOL_SIZE || 4));
		let hashesDone = 0;
		const hashes = Array.from({ length: 8 }, (_, i) => hashPassword(`password ${i}`, 15).then(() => hashesDone++));
		// Queued behind the hashes on the pool: without a bound it waits for one of them to finish.
		await stat(__filename);
		expect(hashesDone).toBe(0);
		await Promise.all(hashes);
		expect(hashesDone).toBe(8);
	});

	it("answers 503 at once when too many hashes are waiting, rather than letting callers time out", async () => {
		const outcomes = await Promise.allSettled(Array.from({ length: 80 }, (_, i) => hashPassword(`burst ${i}`, 14)));
		const refused = outcomes.filter(outcome => outcome.status === "rejected");
		expect(outcomes.length - refused.length).toBeGreaterThanOrEqual(HASH_CONCURRENCY);
		expect(refused.length).toBeGreaterThanOrEqual(80 - HASH_CONCURRENCY - 64);
		for (const outcome of refused) expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 503, type: "SERVICE_NOT_AVAILABLE" });
		expect(hashingLoad()).toEqual({ running: 0, waiting: 0 });
	});
});

describe("configuration of accounts and limits", () => {
	it("REGISTER_RATE_LIMIT is 10 by default, PASSWORD_HASH_COST 17", () => {
		expect(loadConfig({})).toMatchObject({ registerRateLimit: 10, passwordHashCost: 17 });
		expect(loadConfig({ REGISTER_RATE_LIMIT: "25", PASSWORD_HASH_COST: "15" })).toMatchObject({ registerRateLimit: 25, passwordHashCost: 15 });
	});

	it.each([
		["REGISTER_RATE_LIMIT", "0"],
		["REGISTER_RATE_LIMIT", "ten"],
		["PASSWORD_HASH_COST", "13"],
		["PASSWORD_HASH_COST", "21"],
		["PASSWORD_HASH_COST", "16.5"]
	])("refuses %s=%s with a line naming it", (key, value) => {
		expect(() => loadConfig({ [key]: value })).toThrow(ConfigError);
		expect(() => loadConfig({ [key]: value })).toThrow(new RegExp(`^${key} `));
	});
});
