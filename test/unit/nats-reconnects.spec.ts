/**
 * natsReconnects (lib/bus.ts): Moleculer's NATS transporter is told nothing when the nats client
 * reconnects to another server; the middleware hands the reconnect to the transit, as Moleculer's other
 * transporters do, so the caches that may have missed invalidation events while away are emptied.
 */
import { ServiceBroker } from "moleculer";
import { Events, type Status } from "nats";
import { natsReconnects } from "../../lib/bus";

/** The nats client's `status()` stream, fed by the test. */
function statusStream() {
	const queued: Status[] = [];
	let wake: (() => void) | null = null;
	return {
		push(status: Status) {
			queued.push(status);
			wake?.();
		},
		async *status(): AsyncIterable<Status> {
			for (;;) {
				while (queued.length > 0) yield queued.shift()!;
				await new Promise<void>(resolve => (wake = resolve));
			}
		}
	};
}

describe("natsReconnects", () => {
	let broker: ServiceBroker;
	afterEach(() => broker?.stop());

	it("hands a reconnect to Moleculer's transit: $transporter.connected with wasReconnect, and the node's cache emptied", async () => {
		broker = new ServiceBroker({ nodeID: "moved-1", transporter: "Fake", cacher: "Memory", logger: false, middlewares: [natsReconnects()] });
		const client = statusStream();
		(broker.transit!.tx as unknown as { client: unknown }).client = client;
		await broker.start();
		await broker.cacher!.set("inventory.get:p-1", { stock: 5 });
		expect(await broker.cacher!.get("inventory.get:p-1")).toEqual({ stock: 5 });
		// The transit waits 500 ms for INFO answers before it says so; 5 s is a no.
		const connected = new Promise<{ wasReconnect: boolean } | "not told">(resolve => {
			broker.localBus.once("$transporter.connected", resolve);
			setTimeout(() => resolve("not told"), 5_000).unref();
		});

		client.push({ type: Events.Disconnect, data: "127.0.0.1:4223" });
		client.push({ type: Events.Reconnect, data: "127.0.0.1:4222" });

		expect(await connected).toEqual({ wasReconnect: true });
		// Moleculer's memory cacher answers a missing key with undefined.
		expect(await broker.cacher!.get("inventory.get:p-1")).toBeUndefined();
	});
});
