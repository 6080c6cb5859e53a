/**
 * Orders whose creating request is still running in this process. The settle loop must never
 * take over (void and cancel) such an order, and a cancel or an Idempotency-Key replay that finds
 * one waits for its request to finish first.
 */
export class InFlightOrders {
	private readonly running = new Map<string, Promise<void>>();

	/** Marks an order as being created here (before its row exists); call the answer when its request is done. */
	begin(orderId: string): () => void {
		let done!: () => void;
		this.running.set(orderId, new Promise<void>(resolve => (done = resolve)));
		return () => {
			this.running.delete(orderId);
			done();
		};
	}

	has(orderId: string): boolean {
		return this.running.has(orderId);
	}

	/** Resolves when the order's creating request is done (at once when there is none). */
	async finished(orderId: string): Promise<void> {
		await this.running.get(orderId);
	}
}
