// The errors a payer throws, one class per cause a caller may act on (instanceof, or name).

/** A 402 names a channel contract other than the trusted one: paying there would lock
 * tokens in a contract nobody vetted. */
export class UntrustedContractError extends Error {
  /** @param {string} got @param {string} want @param {string} [why] */
  constructor(got, want, why) {
    super(why ? `the server asks for payment in contract ${got}: ${why}`
      : `the server asks for payment in contract ${got}; the trusted one is ${want}`);
    this.name = 'UntrustedContractError';
    this.got = got;
    this.want = want;
  }
}

/** Paying the request would exceed maxSpend. */
export class SpendingCapError extends Error {
  /** @param {bigint} cap @param {bigint} spent @param {bigint} price */
  constructor(cap, spent, price) {
    super(`spending cap ${cap} reached: ${spent} spent, the request costs ${price}`);
    this.name = 'SpendingCapError';
    this.cap = cap;
    this.spent = spent;
    this.price = price;
  }
}

/** The request costs more than maxPrice. */
export class PriceTooHighError extends Error {
  /** @param {bigint} price @param {bigint} max */
  constructor(price, max) {
    super(`the request costs ${price}, more than the maximum price ${max}`);
    this.name = 'PriceTooHighError';
    this.price = price;
    this.max = max;
  }
}

/** The proof scheme the payer is configured for cannot be used with the server; nothing
 * was signed or deposited. */
export class ProofSchemeError extends Error {
  /** @param {string} want @param {string} reason */
  constructor(want, reason) {
    super(`proof scheme ${want} cannot be used: ${reason}`);
    this.name = 'ProofSchemeError';
    this.want = want;
    this.reason = reason;
  }
}

/** A 402's RDN-Balance-Signature is not the sender's proof of its RDN-Sender-Balance:
 * adopting that balance could make the sender pay twice. */
export class BadServerProofError extends Error {
  /** @param {string} detail */
  constructor(detail) {
    super(`the server's balance proof is not ours: ${detail}`);
    this.name = 'BadServerProofError';
  }
}

/** The server did not take a payment within the payer's wait (confirmations, a top-up). */
export class PaymentTimeoutError extends Error {
  /** @param {string} url @param {number} ms */
  constructor(url, ms) {
    super(`pay ${url}: the server did not take the payment within ${ms / 1000}s`);
    this.name = 'PaymentTimeoutError';
  }
}

/** The server refused to sign a cooperative close. balance is the server's last accepted
 * balance when it named one (409). */
export class CloseRefusedError extends Error {
  /** @param {number} status @param {string} reason @param {bigint | null} [balance] */
  constructor(status, reason, balance = null) {
    super(`the server refused the cooperative close (${status}): ${reason || 'no reason given'}`);
    this.name = 'CloseRefusedError';
    this.status = status;
    this.balance = balance;
  }
}

/** The server's closing signature is not the receiver's for the balance and scheme asked:
 * sending it would only burn gas. */
export class BadClosingSignatureError extends Error {
  /** @param {string} detail */
  constructor(detail) {
    super(`the server's closing signature is not the receiver's: ${detail}`);
    this.name = 'BadClosingSignatureError';
  }
}

/** The contract does not hold the channel: settled, closed already, or never created. */
export class NotOnChainError extends Error {
  /** @param {string} receiver @param {number} openBlock */
  constructor(receiver, openBlock) {
    super(`channel ${receiver}/${openBlock} is not on chain: it was settled or closed already, or never created`);
    this.name = 'NotOnChainError';
  }
}

/** A close of the channel was already requested on chain: it runs its challenge period. */
export class CloseRequestedError extends Error {
  /** @param {string} receiver @param {number} openBlock @param {bigint} settleBlock */
  constructor(receiver, openBlock, settleBlock) {
    super(`channel ${receiver}/${openBlock}: a close was already requested on chain; it can be settled after block ${settleBlock}`);
    this.name = 'CloseRequestedError';
    this.settleBlock = settleBlock;
  }
}

/** A discovery document (prices) that cannot be read: not one, or of another format
 * version, or refused by the server. */
export class DiscoveryError extends Error {
  /** @param {string} url @param {string} reason @param {{ cause?: unknown, version?: unknown }} [more] */
  constructor(url, reason, more = {}) {
    super(`discovery document ${url}: ${reason}`, more.cause === undefined ? undefined : { cause: more.cause });
    this.name = 'DiscoveryError';
    this.url = url;
    this.reason = reason;
    /** The document's version, when that is why it is refused. */
    this.version = more.version;
  }
}

/** The discovery document cannot tell which rule prices a request, as the server would: a
 * rule's RE2 pattern that JavaScript cannot match as Go does (pattern), or a path the server
 * would resolve before matching (path). Only the request's 402 can say. */
export class RuleMatchError extends Error {
  /**
   * @param {string} reason
   * @param {{ pattern?: string, path?: string, rule?: string }} [what]
   */
  constructor(reason, what = {}) {
    const where = [
      what.rule !== undefined ? `rule ${JSON.stringify(what.rule)}` : '',
      what.pattern !== undefined ? `pattern ${JSON.stringify(what.pattern)}` : '',
      what.path !== undefined ? `path ${JSON.stringify(what.path)}` : '',
    ].filter(Boolean).join(', ');
    super(`${where ? `${where}: ` : ''}${reason}`);
    this.name = 'RuleMatchError';
    this.reason = reason;
    this.pattern = what.pattern ?? null;
    this.path = what.path ?? null;
    this.rule = what.rule ?? null;
  }
}
