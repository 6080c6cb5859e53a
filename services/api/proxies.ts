/** Which peers are the shop's own load balancers (TRUSTED_PROXIES), with node:net's BlockList. */
import { BlockList, isIP } from "node:net";

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is 127.0.0.1. */
export const unmapped = (address: string) => address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1");

/** TRUSTED_PROXIES' entries (checked by lib/config.ts): addresses and CIDR subnets. */
export function proxyList(entries: readonly string[]): BlockList {
	const list = new BlockList();
	for (const entry of entries) {
		const [address, prefix] = entry.split("/");
		const type = isIP(address) === 6 ? "ipv6" : "ipv4";
		if (prefix === undefined) list.addAddress(address, type);
		else list.addSubnet(address, Number(prefix), type);
	}
	return list;
}

export function isTrusted(list: BlockList, address: string): boolean {
	const family = isIP(address);
	return family !== 0 && list.check(address, family === 6 ? "ipv6" : "ipv4");
}
