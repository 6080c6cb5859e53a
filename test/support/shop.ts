/** Test access to the real shop process and a real nats-server (shared with the benchmark). */
export * from "../../scripts/shop-process";
