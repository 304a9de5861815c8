// Which proof scheme a payment is signed in (docs/protocol.md §2.1): the server's offer in
// a 402 against the client's choice, as the Go client decides it (client/scheme.go).
import { isAddress, isAddressEqual } from 'viem';
import { LEGACY, TYPED, offeredSchemes } from './proof.js';
import { ProofSchemeError } from './errors.js';

/** @typedef {import('./proof.js').Scheme} Scheme */
/** @typedef {'auto' | Scheme} ProofSchemeChoice */

/**
 * Reads "auto", "eip712" or "legacy", exactly: a misspelt choice that fell back to auto
 * would sign in a scheme the user meant to avoid.
 * @param {string | undefined} text
 * @returns {ProofSchemeChoice}
 */
export function parseProofSchemeChoice(text) {
  if (text === undefined) return 'auto';
  if (text === 'auto' || text === LEGACY || text === TYPED) return text;
  throw new TypeError(`proof scheme must be "auto", "eip712" or "legacy", got ${JSON.stringify(text)}`);
}

/**
 * What a 402 says about the schemes it takes.
 * @typedef {object} Offer
 * @property {Scheme[]} schemes the schemes the server names, preferred first
 * @property {string} typedReason empty when a typed proof for our chain and contract would be
 *   taken, otherwise why not
 */

/**
 * Reads RDN-Proof-Schemes and, when it names eip712, the 402 body's eip712_domain, which
 * must be ours: a typed proof signed for another chain or contract would not verify.
 * @param {string | null} header RDN-Proof-Schemes
 * @param {unknown} body the 402's body, parsed (anything else when it is not JSON)
 * @param {number} chainId the chain the client is on
 * @param {import('viem').Address} contract the trusted channel contract
 * @returns {Offer}
 */
export function readOffer(header, body, chainId, contract) {
  if (!header) {
    return { schemes: [LEGACY], typedReason: 'the server does not name proof schemes (a µRaiden 0.2.0 server: legacy only)' };
  }
  const schemes = offeredSchemes(header);
  if (!schemes.includes(TYPED)) return { schemes, typedReason: `the server offers ${list(schemes)} only` };
  const d = /** @type {{ eip712_domain?: Record<string, unknown> } | null} */ (body)?.eip712_domain;
  let typedReason = '';
  if (!d || typeof d !== 'object') {
    typedReason = 'the server offers eip712 but its 402 body has no eip712_domain';
  } else if (d.name !== 'uraiden' || d.version !== '1') {
    typedReason = `the server's eip712_domain is ${JSON.stringify(d.name)} version ${JSON.stringify(d.version)}, not "uraiden" version "1"`;
  } else if (String(d.chainId) !== String(chainId)) {
    typedReason = `the server's eip712_domain names chain ${d.chainId}, the client is on chain ${chainId}`;
  } else if (typeof d.verifyingContract !== 'string' || !isAddress(d.verifyingContract, { strict: false })
    || !isAddressEqual(d.verifyingContract, contract)) {
    typedReason = `the server's eip712_domain names contract ${d.verifyingContract}, the client trusts ${contract}`;
  }
  return { schemes, typedReason };
}

/**
 * The scheme of the next proof and why, or a ProofSchemeError when the choice cannot be used
 * with this server. In auto, typed whenever the server offers it for our chain and contract.
 * @param {Offer} offer
 * @param {ProofSchemeChoice} choice
 * @returns {{ scheme: Scheme, why: string }}
 */
export function chooseScheme(offer, choice) {
  const typedOK = offer.typedReason === '';
  const legacyOK = offer.schemes.includes(LEGACY);
  if (choice === TYPED || choice === LEGACY) {
    if (choice === TYPED && !typedOK) throw new ProofSchemeError(choice, offer.typedReason);
    if (choice === LEGACY && !legacyOK) throw new ProofSchemeError(choice, `the server offers ${list(offer.schemes)} only`);
    return { scheme: choice, why: `forced (proof scheme ${choice}); the server offers ${list(offer.schemes)}` };
  }
  if (typedOK) return { scheme: TYPED, why: 'the server offers eip712 for this chain and contract' };
  if (legacyOK) return { scheme: LEGACY, why: offer.typedReason };
  throw new ProofSchemeError('auto', offer.typedReason);
}

/** @param {Scheme[]} schemes */
function list(schemes) {
  return schemes.length ? schemes.join(', ') : 'no scheme this client knows';
}
