/** Unit tests (in-memory broker), HTTP integration tests (a started shop) and cluster tests (real nats-server). */
module.exports = {
	testEnvironment: "node",
	roots: ["<rootDir>/test"],
	testMatch: ["**/*.spec.ts"],
	transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
	testTimeout: 60_000,
	// Servers started by a suite are stopped in its afterAll; this only catches a leak.
	forceExit: false
};
