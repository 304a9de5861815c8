// The cooperative close's exchange with the server (docs/protocol.md §5): the sender's
// balance proof and close request for a balance, against the receiver's closing signature.
import { LEGACY, closedBy, parseScheme } from './proof.js';
import { BadClosingSignatureError, CloseRefusedError } from './errors.js';

/** @typedef {import('viem').Address} Address */
/** @typedef {import('viem').Hex} Hex */

/** How long a close request is valid, in seconds: the server takes none that expires more
 * than 10 minutes ahead. */
export const closeRequestLifetime = 5 * 60;

/**
 * Signs a close request for the balance, valid for closeRequestLifetime, and asks the server
 * for the receiver's closing signature with it (requestClosingSignature).
 * @param {object} a
 * @param {Pick<import('./signer.js').Signer, 'signCloseRequest'>} a.signer the sender's
 * @param {typeof fetch} a.fetch
 * @param {string} a.api the channel API's base URL (the 402's RDN-Gateway-Path on its origin)
 * @param {Address} a.sender
 * @param {Address} a.receiver
 * @param {Address} a.contract
 * @param {number} a.chainId
 * @param {number} a.openBlock
 * @param {bigint} a.balance
 * @param {Hex} a.balanceSignature
 * @param {import('./proof.js').Scheme} a.scheme
 * @param {() => void} [a.signed] called once the request is signed, before the server is
 *   asked: a wallet's prompt is over then, the wait for the server starts
 * @returns {Promise<Hex>}
 */
export async function askClosingSignature(a) {
  const { signer, signed, ...ask } = a;
  const expires = Math.floor(Date.now() / 1000) + closeRequestLifetime;
  const requestSignature = await signer.signCloseRequest({
    receiver: a.receiver, contract: a.contract, chainId: a.chainId, sender: a.sender, openBlock: a.openBlock,
    balance: a.balance, expires,
  }, a.scheme);
  signed?.();
  return requestClosingSignature({ ...ask, requestSignature, expires });
}

/**
 * Asks the server for the receiver's closing signature: DELETE
 * <api>/channels/<sender>/<open_block> with the balance proof and the close request, both in
 * scheme. The signature is checked before it is returned: a closing signature in another
 * scheme, or for another balance, would make the contract revert after the gas was paid.
 * A refusal is a CloseRefusedError; on a 409 its balance is the server's last accepted one.
 * @param {object} a
 * @param {typeof fetch} a.fetch
 * @param {string} a.api the channel API's base URL (the 402's RDN-Gateway-Path on its origin)
 * @param {Address} a.sender
 * @param {Address} a.receiver
 * @param {Address} a.contract
 * @param {number} a.chainId
 * @param {number} a.openBlock
 * @param {bigint} a.balance
 * @param {Hex} a.balanceSignature
 * @param {Hex} a.requestSignature the close request's signature
 * @param {number} a.expires the close request's expiry, Unix seconds
 * @param {import('./proof.js').Scheme} a.scheme
 * @returns {Promise<Hex>}
 */
export async function requestClosingSignature(a) {
  const res = await a.fetch(`${a.api.replace(/\/+$/, '')}/channels/${a.sender}/${a.openBlock}`, {
    method: 'DELETE',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      balance: a.balance.toString(), balance_signature: a.balanceSignature,
      close_request_signature: a.requestSignature, close_request_expires: a.expires,
      // Named only when typed: absent means legacy, and a server from before the typed scheme
      // refuses a field it does not know.
      ...(a.scheme === LEGACY ? {} : { proof_scheme: a.scheme }),
    }),
  });
  /** @type {Record<string, unknown>} */
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const balance = res.status === 409 && typeof body.balance === 'string' && /^\d+$/.test(body.balance) ? BigInt(body.balance) : null;
    throw new CloseRefusedError(res.status, String(body.error ?? ''), balance);
  }
  const answered = parseScheme(/** @type {string} */ (body.proof_scheme ?? LEGACY));
  if (answered !== a.scheme) {
    // A server that does not know typed closes ignores proof_scheme and signs legacy.
    throw new BadClosingSignatureError(`asked for a ${a.scheme} closing signature, the server answered ${body.proof_scheme}`);
  }
  const closing = { sender: a.sender, openBlock: a.openBlock, balance: a.balance, contract: a.contract, chainId: a.chainId };
  if (typeof body.close_signature !== 'string' || !(await closedBy(a.receiver, closing, body.close_signature, a.scheme))) {
    throw new BadClosingSignatureError(`not signed by ${a.receiver} for a balance of ${a.balance} (${a.scheme})`);
  }
  return /** @type {Hex} */ (body.close_signature);
}
