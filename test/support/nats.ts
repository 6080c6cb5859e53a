export * from "../../scripts/nats-server";
