// Signers: who signs balance proofs and close requests, and sends the channel transactions.
// A key (a private key or a viem local account) signs here; a wallet (an EIP-1193 provider:
// window.ethereum) asks the person, in whatever format it can sign.
import { custom, getAddress, isAddressEqual, recoverMessageAddress, recoverTypedDataAddress, serializeTypedData, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import {
  LEGACY, TYPED, balanceProofHash, balanceProofTypedData, closeRequestText, signedBy, typedBalanceProof, typedCloseRequest,
} from './proof.js';

/** @typedef {import('viem').Address} Address */
/** @typedef {import('viem').Hex} Hex */
/** @typedef {import('./proof.js').Scheme} Scheme */
/** @typedef {import('./proof.js').BalanceMessage} BalanceMessage */
/** @typedef {import('./proof.js').CloseRequestMessage} CloseRequestMessage */

/**
 * @typedef {object} Signer
 * @property {'key' | 'wallet'} kind
 * @property {Address} address the sender
 * @property {import('viem').Account | Address} account what transactions are sent from: a local
 *   account signs them (sent raw to the node), a wallet's address has the wallet sign and send
 * @property {import('viem').Transport | null} transport the wallet's own transport to the chain;
 *   null for a key, which needs the payer's rpcUrl
 * @property {(proof: BalanceMessage, scheme: Scheme) => Promise<Hex>} signBalance the balance
 *   proof in scheme; a SchemeUnsupportedError when the signer cannot sign that scheme
 * @property {(request: CloseRequestMessage, scheme: Scheme) => Promise<Hex>} signCloseRequest
 *   the close request in scheme: typed, the EIP-712 CloseRequest; legacy, the text, as a
 *   personal message
 */

/** The signer cannot sign in the scheme asked (a wallet without the method). */
export class SchemeUnsupportedError extends Error {
  /** @param {Scheme} scheme @param {string} message */
  constructor(scheme, message) {
    super(message);
    this.name = 'SchemeUnsupportedError';
    this.scheme = scheme;
  }
}

/**
 * A signer holding the key: a private key (0x and 64 hex digits) or a viem local account
 * (privateKeyToAccount, mnemonicToAccount, hdKeyToAccount). Transactions go through the
 * payer's rpcUrl.
 * @param {Hex | import('viem').LocalAccount} key
 * @returns {Signer}
 */
export function keySigner(key) {
  const account = typeof key === 'string' ? privateKeyToAccount(key) : key;
  if (!account || account.type !== 'local' || typeof account.sign !== 'function') {
    throw new TypeError('keySigner takes a private key or a viem local account that can sign hashes (account.sign)');
  }
  const sign = account.sign;
  return {
    kind: 'key',
    address: account.address,
    account,
    transport: null,
    async signBalance(proof, scheme) {
      if (scheme === TYPED) return account.signTypedData(typedBalanceProof(proof));
      // The legacy proof is its hash signed as it is, without a prefix (protocol.md §2).
      return sign({ hash: balanceProofHash(proof) });
    },
    async signCloseRequest(request, scheme) {
      if (scheme === TYPED) return account.signTypedData(typedCloseRequest(request));
      return account.signMessage({ message: closeRequestText(request) });
    },
  };
}

/**
 * A wallet as a signer: an EIP-1193 provider (window.ethereum) and the account it signs for
 * (from eth_requestAccounts). The wallet shows each message and the person approves it or
 * not; nothing here signs on its own. Balance proofs are eth_signTypedData_v4 (typed) or
 * the legacy eth_signTypedData (v1) µRaiden used; close requests eth_signTypedData_v4 or
 * personal_sign. Each signature is checked to recover to the account under the protocol's
 * hash: a wallet that hashes a message another way would make proofs the server refuses.
 * @param {import('viem').EIP1193Provider | { request: (args: any) => Promise<any> }} ethereum
 * @param {string} address
 * @returns {Signer}
 */
export function walletSigner(ethereum, address) {
  const account = getAddress(address);
  // Set once the wallet said it has no eth_signTypedData_v4, so it is asked no more.
  let noTypedData = false;
  /** @param {any} args */
  const request = (args) => /** @type {{ request: (args: any) => Promise<any> }} */ (ethereum).request(args);

  /**
   * @param {import('./proof.js').TypedMessage} data
   * @param {string} what
   * @returns {Promise<Hex>}
   */
  async function signTyped(data, what) {
    if (noTypedData) throw new SchemeUnsupportedError(TYPED, noV4);
    let signature;
    try {
      signature = await request({ method: 'eth_signTypedData_v4', params: [account, serializeTypedData(data)] });
    } catch (err) {
      if (!unsupported(err)) throw err;
      noTypedData = true;
      throw new SchemeUnsupportedError(TYPED, noV4);
    }
    let signer = null;
    try {
      signer = await recoverTypedDataAddress({ ...data, signature });
    } catch {
      // not a signature: refused below
    }
    if (typeof signature !== 'string' || !signer || !isAddressEqual(signer, account)) {
      throw new Error(`your wallet did not sign the ${what} as EIP-712 typed data (eth_signTypedData_v4); try another wallet`);
    }
    return /** @type {Hex} */ (signature);
  }

  return {
    kind: 'wallet',
    address: account,
    account,
    transport: custom(/** @type {any} */ (ethereum)),
    async signBalance(proof, scheme) {
      if (scheme === TYPED) return signTyped(typedBalanceProof(proof), 'payment');
      let signature;
      try {
        signature = await request({ method: 'eth_signTypedData', params: [balanceProofTypedData(proof), account] });
      } catch (err) {
        if (unsupported(err)) {
          throw new SchemeUnsupportedError(LEGACY, 'your wallet cannot sign the legacy typed data (eth_signTypedData v1) this server needs; try another wallet');
        }
        throw err;
      }
      if (typeof signature !== 'string' || !(await signedBy(account, proof, signature, LEGACY))) {
        throw new Error('your wallet did not sign the payment in the legacy typed-data format this server needs (eth_signTypedData v1); try another wallet');
      }
      return /** @type {Hex} */ (signature);
    },
    async signCloseRequest(req, scheme) {
      if (scheme === TYPED) return signTyped(typedCloseRequest(req), 'close request');
      const message = closeRequestText(req);
      const signature = await request({ method: 'personal_sign', params: [toHex(message), account] });
      let signer = null;
      try {
        signer = await recoverMessageAddress({ message, signature });
      } catch {
        // not a signature: refused below
      }
      if (typeof signature !== 'string' || !signer || !isAddressEqual(signer, account)) {
        throw new Error('your wallet did not sign the close request as a personal message (personal_sign); try another wallet');
      }
      return /** @type {Hex} */ (signature);
    },
  };
}

const noV4 = 'your wallet cannot sign EIP-712 typed data (eth_signTypedData_v4); try another wallet';

/**
 * A wallet without a method answers 4200 (EIP-1193's unsupported method), or passes the call
 * to its node, which answers -32601 (JSON-RPC's method not found).
 * @param {any} err
 */
function unsupported(err) {
  const code = err?.code ?? err?.cause?.code;
  return code === 4200 || code === -32601;
}

/**
 * Signs a balance proof in the first of schemes the signer can sign: a wallet without
 * eth_signTypedData_v4 falls back to legacy when the server takes it. Returns the signature
 * and its scheme; a close request must then be signed in the same scheme.
 * @param {Signer} signer
 * @param {BalanceMessage} proof
 * @param {Scheme[]} schemes acceptable schemes, preferred first
 * @returns {Promise<{ signature: Hex, scheme: Scheme }>}
 */
export async function signPayment(signer, proof, schemes) {
  /** @type {unknown} */
  let last = new Error('this server takes no proof format this client can sign');
  for (const scheme of schemes) {
    try {
      return { signature: await signer.signBalance(proof, scheme), scheme };
    } catch (err) {
      if (!(err instanceof SchemeUnsupportedError)) throw err;
      last = err;
    }
  }
  throw last;
}
