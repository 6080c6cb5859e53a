/** The small catalogue a first start shows when SEED_DEMO is on and the shop has no products. */
export const DEMO_PRODUCTS = [
	{ sku: "MUG-001", name: "Moleculer mug", description: "Ceramic mug, 350 ml, with the Moleculer logo.", price: 1299, stock: 100 },
	{ sku: "TEE-001", name: "Broker T-shirt", description: "Cotton T-shirt: 'It works on my node'.", price: 2199, stock: 50 },
	{ sku: "STK-001", name: "Sticker pack", description: "Ten vinyl stickers for your laptop.", price: 499, stock: 500 },
	{ sku: "HOOD-001", name: "NATS hoodie", description: "Warm hoodie for cold clusters.", price: 4999, stock: 25 },
	{ sku: "BOOK-001", name: "Microservices field guide", description: "Paperback, 320 pages.", price: 3450, stock: 40 },
	{ sku: "CAP-001", name: "Circuit breaker cap", description: "Opens when it gets too hot.", price: 1599, stock: 60 }
] as const;
