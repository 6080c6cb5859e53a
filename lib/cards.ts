/**
 * The payment rules of the test sandbox, apart from any transport (the contract's "Test cards").
 * Only `cardLast4` ever leaves this module with anything of the number.
 */

export const APPROVED_TEST_CARD = "4242424242424242";
export const DECLINED_TEST_CARD = "4000000000000002";

export function passesLuhn(digits: string): boolean {
	let sum = 0;
	for (let i = 0; i < digits.length; i++) {
		let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
		if (i % 2 === 1) {
			digit *= 2;
			if (digit > 9) digit -= 9;
		}
		sum += digit;
	}
	return sum % 10 === 0;
}

/** A card number the sandbox accepts as input at all: 12 to 19 digits passing the Luhn check. */
export function isValidCardNumber(card: string): boolean {
	return /^[0-9]{12,19}$/.test(card) && passesLuhn(card);
}

export type ChargeDecision = "approved" | "declined";

/** What the sandbox's card network answers for a valid card number. */
export function decideCharge(card: string): ChargeDecision {
	return card === DECLINED_TEST_CARD ? "declined" : "approved";
}

export function lastFour(card: string): string {
	return card.slice(-4);
}
