/**
 * The environment every unit spec runs with. Import it FIRST in a spec file: lib/config.ts reads
 * the environment once (shopConfig() memoises it), at the first service created.
 */
process.env.USERS_DB = "sqlite::memory:";
process.env.INVENTORY_DB = "sqlite::memory:";
process.env.ORDERS_DB = "sqlite::memory:";
process.env.PAYMENTS_DB = "sqlite::memory:";
process.env.METRICS_PORT = "0";
process.env.SEED_DEMO = "false";
process.env.JWT_SECRET = "unit-test-secret-0123456789";
process.env.NODE_ENV = "test";
delete process.env.ADMIN_EMAIL;
delete process.env.ADMIN_PASSWORD;
delete process.env.TRANSPORTER;
delete process.env.SERVICES;
delete process.env.LOG_LEVEL;
delete process.env.PAYMENT_TIMEOUT_MS;

export const JWT_SECRET = process.env.JWT_SECRET;
