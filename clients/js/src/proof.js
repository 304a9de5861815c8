// Balance proofs, closing signatures and close requests as the server and the contract
// verify them, in either proof scheme (docs/protocol.md §2, §2.1 and §5): the messages to
// sign and the recovery of their signers. Signing is the signers' (signer.js).
import {
  encodePacked, keccak256, recoverAddress, recoverTypedDataAddress, isAddressEqual, getAddress,
} from 'viem';

/** @typedef {import('viem').Address} Address */
/** @typedef {import('viem').Hex} Hex */
/** @typedef {'legacy' | 'eip712'} Scheme */

/**
 * A balance of one channel, as both schemes sign it. chainId is used by the typed scheme only.
 * @typedef {object} BalanceMessage
 * @property {Address} receiver
 * @property {number} openBlock
 * @property {bigint} balance
 * @property {Address} contract
 * @property {number} chainId
 */

/**
 * The sender's request to close a channel at a balance, valid until expires (Unix seconds).
 * @typedef {object} CloseRequestMessage
 * @property {Address} receiver
 * @property {Address} contract
 * @property {number} chainId
 * @property {Address} sender
 * @property {number} openBlock
 * @property {bigint} balance
 * @property {number} expires
 */

// The schemes' wire names. A proof that names none is legacy.
/** @type {'legacy'} */
export const LEGACY = 'legacy';
/** @type {'eip712'} */
export const TYPED = 'eip712';

/**
 * The scheme a wire name stands for, or null for a name this library does not know.
 * @param {string | null | undefined} name
 * @returns {Scheme | null}
 */
export function parseScheme(name) {
  return name === LEGACY || name === TYPED ? name : null;
}

/**
 * The server's list of schemes (RDN-Proof-Schemes, preferred first), names this library does
 * not know skipped; a server that names none takes legacy proofs only, as µRaiden's did.
 * @param {string | null | undefined} list
 * @returns {Scheme[]}
 */
export function offeredSchemes(list) {
  if (!list) return [LEGACY];
  /** @type {Scheme[]} */
  const out = [];
  for (const name of list.split(',')) {
    const s = parseScheme(name.trim());
    if (s && !out.includes(s)) out.push(s);
  }
  return out;
}

// ---- The legacy scheme (µRaiden's) ----

/**
 * The legacy (v1) eth_signTypedData message µRaiden's paywall signed. The wallet hashes it as
 * keccak256(keccak256(types ‖ names) ‖ keccak256(values)) with no prefix, domain or chain id:
 * exactly the balance proof hash of protocol.md §2, which the contract and the server check.
 * @param {BalanceMessage} proof
 */
export function balanceProofTypedData({ receiver, openBlock, balance, contract }) {
  return [
    { type: 'string', name: 'message_id', value: 'Sender balance proof signature' },
    { type: 'address', name: 'receiver', value: receiver },
    { type: 'uint32', name: 'block_created', value: openBlock.toString() },
    { type: 'uint192', name: 'balance', value: balance.toString() },
    { type: 'address', name: 'contract', value: contract },
  ];
}

/**
 * The hash of protocol.md §2: a balance proof (party = receiver) or a closing signature
 * (party = sender), as the legacy typed data above stands for it.
 * @param {string} messageId
 * @param {string} partyField
 * @param {Address} party
 * @param {{ openBlock: number, balance: bigint, contract: Address }} fields
 * @returns {Hex}
 */
function legacyHash(messageId, partyField, party, { openBlock, balance, contract }) {
  const schema = keccak256(encodePacked(
    ['string', 'string', 'string', 'string', 'string'],
    ['string message_id', partyField, 'uint32 block_created', 'uint192 balance', 'address contract'],
  ));
  const values = keccak256(encodePacked(
    ['string', 'address', 'uint32', 'uint192', 'address'],
    [messageId, party, openBlock, balance, contract],
  ));
  return keccak256(encodePacked(['bytes32', 'bytes32'], [schema, values]));
}

/**
 * The legacy balance proof's hash, which a key signs as it is (no prefix).
 * @param {BalanceMessage} proof
 * @returns {Hex}
 */
export function balanceProofHash(proof) {
  return legacyHash('Sender balance proof signature', 'address receiver', proof.receiver, proof);
}

/**
 * The close request the server needs besides the balance proof to sign a legacy cooperative
 * close (protocol.md §5): a personal message (EIP-191) made only to close, which a payment
 * proof seen by others cannot stand in for. Addresses are checksummed, numbers decimal.
 * @param {CloseRequestMessage} request
 * @returns {string}
 */
export function closeRequestText({ receiver, contract, chainId, sender, openBlock, balance, expires }) {
  return [
    'uraiden cooperative close request',
    `receiver: ${getAddress(receiver)}`,
    `contract: ${getAddress(contract)}`,
    `chain id: ${chainId}`,
    `sender: ${getAddress(sender)}`,
    `open block: ${openBlock}`,
    `balance: ${balance}`,
    `expires: ${expires}`,
  ].join('\n');
}

// ---- The typed scheme (EIP-712, protocol.md §2.1) ----

const domainFields = [
  { name: 'name', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'chainId', type: 'uint256' },
  { name: 'verifyingContract', type: 'address' },
];

// The struct types, exactly rdn's (rdn/typed.go).
const typedTypes = {
  BalanceProof: [
    { name: 'receiver', type: 'address' },
    { name: 'openBlock', type: 'uint32' },
    { name: 'balance', type: 'uint192' },
  ],
  ClosingBalance: [
    { name: 'sender', type: 'address' },
    { name: 'openBlock', type: 'uint32' },
    { name: 'balance', type: 'uint192' },
  ],
  CloseRequest: [
    { name: 'receiver', type: 'address' },
    { name: 'openBlock', type: 'uint32' },
    { name: 'balance', type: 'uint192' },
    { name: 'expires', type: 'uint64' },
  ],
};

/**
 * The EIP-712 message of one struct under the uraiden domain of the contract and chain: what
 * eth_signTypedData_v4 shows the person and signs.
 * @param {'BalanceProof' | 'ClosingBalance' | 'CloseRequest'} primaryType
 * @param {Record<string, unknown>} message
 * @param {{ chainId: number, contract: Address }} domain
 */
function typedData(primaryType, message, { chainId, contract }) {
  return {
    domain: { name: 'uraiden', version: '1', chainId, verifyingContract: getAddress(contract) },
    types: { EIP712Domain: domainFields, [primaryType]: typedTypes[primaryType] },
    primaryType,
    message,
  };
}

/** @typedef {ReturnType<typeof typedData>} TypedMessage an EIP-712 message of uraiden's domain */

/**
 * The typed balance proof (BalanceProof under the uraiden domain).
 * @param {BalanceMessage} proof
 */
export function typedBalanceProof({ receiver, openBlock, balance, contract, chainId }) {
  return typedData('BalanceProof', { receiver: getAddress(receiver), openBlock, balance }, { chainId, contract });
}

/**
 * The typed close request (CloseRequest under the uraiden domain); the sender is the signer.
 * @param {CloseRequestMessage} request
 */
export function typedCloseRequest({ receiver, openBlock, balance, expires, contract, chainId }) {
  return typedData('CloseRequest', { receiver: getAddress(receiver), openBlock, balance, expires: BigInt(expires) },
    { chainId, contract });
}

// ---- Either scheme ----

/**
 * The address that signed a balance proof in a scheme; throws for a malformed signature.
 * @param {BalanceMessage} proof
 * @param {Hex} signature
 * @param {Scheme} scheme
 * @returns {Promise<Address>}
 */
function recoverProof(proof, signature, scheme) {
  if (scheme === TYPED) return recoverTypedDataAddress({ ...typedBalanceProof(proof), signature });
  if (scheme === LEGACY) return recoverAddress({ hash: balanceProofHash(proof), signature });
  throw new Error(`unknown proof scheme ${scheme}`);
}

/**
 * Whether signature is sender's balance proof in scheme; false for anything malformed, or a
 * scheme that is none.
 * @param {Address} sender
 * @param {BalanceMessage} proof
 * @param {string} signature
 * @param {string} [scheme]
 * @returns {Promise<boolean>}
 */
export async function signedBy(sender, proof, signature, scheme = LEGACY) {
  try {
    return isAddressEqual(await recoverProof(proof, /** @type {Hex} */ (signature), /** @type {Scheme} */ (scheme)), sender);
  } catch {
    return false;
  }
}

/**
 * Whether signature is the receiver's closing signature in scheme: checked before it goes
 * into a transaction, which would otherwise fail and cost gas.
 * @param {Address} receiver
 * @param {{ sender: Address, openBlock: number, balance: bigint, contract: Address, chainId: number }} closing
 * @param {string} signature
 * @param {Scheme} scheme
 * @returns {Promise<boolean>}
 */
export async function closedBy(receiver, { sender, openBlock, balance, contract, chainId }, signature, scheme) {
  const sig = /** @type {Hex} */ (signature);
  try {
    const signer = scheme === TYPED
      ? await recoverTypedDataAddress({
        ...typedData('ClosingBalance', { sender: getAddress(sender), openBlock, balance }, { chainId, contract }), signature: sig,
      })
      : await recoverAddress({
        hash: legacyHash('Receiver closing signature', 'address sender', sender, { openBlock, balance, contract }), signature: sig,
      });
    return isAddressEqual(signer, receiver);
  } catch {
    return false;
  }
}
