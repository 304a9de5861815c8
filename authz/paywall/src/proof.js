// Balance proofs and close requests as the server verifies them, in either proof scheme
// (protocol.md §2 and §2.1), and the cookies that carry a payment.
import {
  encodePacked, keccak256, recoverAddress, recoverMessageAddress, recoverTypedDataAddress,
  isAddressEqual, getAddress, serializeTypedData, toHex,
} from 'viem';

// The schemes' wire names. A proof that names none is legacy.
export const LEGACY = 'legacy';
export const TYPED = 'eip712';

// offeredSchemes reads the server's list (RDN-Proof-Schemes, preferred first); a server that
// names none takes legacy proofs only, as µRaiden's did.
export function offeredSchemes(list) {
  const names = (list || '').split(',').map((s) => s.trim()).filter((s) => s === LEGACY || s === TYPED);
  return names.length ? names : [LEGACY];
}

// ---- The legacy scheme (µRaiden's) ----

// The legacy (v1) eth_signTypedData message µRaiden's paywall signed. The wallet hashes it as
// keccak256(keccak256(types ‖ names) ‖ keccak256(values)) with no prefix, domain or chain id:
// exactly the balance proof hash of protocol.md §2, which the contract and the server check.
export function balanceProofTypedData({ receiver, openBlock, balance, contract }) {
  return [
    { type: 'string', name: 'message_id', value: 'Sender balance proof signature' },
    { type: 'address', name: 'receiver', value: receiver },
    { type: 'uint32', name: 'block_created', value: openBlock.toString() },
    { type: 'uint192', name: 'balance', value: balance.toString() },
    { type: 'address', name: 'contract', value: contract },
  ];
}

// legacyHash is the hash of protocol.md §2: a balance proof (party = receiver) or a closing
// signature (party = sender), as the legacy typed data above stands for it.
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

export function balanceProofHash(proof) {
  return legacyHash('Sender balance proof signature', 'address receiver', proof.receiver, proof);
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

// typedData is the EIP-712 message of one struct under the uraiden domain of the contract
// and chain: what eth_signTypedData_v4 shows the person and signs.
function typedData(primaryType, message, { chainId, contract }) {
  return {
    domain: { name: 'uraiden', version: '1', chainId, verifyingContract: getAddress(contract) },
    types: { EIP712Domain: domainFields, [primaryType]: typedTypes[primaryType] },
    primaryType,
    message,
  };
}

export function typedBalanceProof({ receiver, openBlock, balance, contract, chainId }) {
  return typedData('BalanceProof', { receiver: getAddress(receiver), openBlock, balance }, { chainId, contract });
}

function typedCloseRequest({ receiver, openBlock, balance, expires, contract, chainId }) {
  return typedData('CloseRequest', { receiver: getAddress(receiver), openBlock, balance, expires: BigInt(expires) },
    { chainId, contract });
}

// ---- Either scheme ----

// recoverProof returns the address that signed a balance proof in a scheme; it throws for a
// malformed signature.
function recoverProof(proof, signature, scheme) {
  if (scheme === TYPED) return recoverTypedDataAddress({ ...typedBalanceProof(proof), signature });
  if (scheme === LEGACY) return recoverAddress({ hash: balanceProofHash(proof), signature });
  throw new Error(`unknown proof scheme ${scheme}`);
}

// signedBy reports whether signature is sender's balance proof in scheme; false for anything
// malformed, or a scheme that is none.
export async function signedBy(sender, proof, signature, scheme = LEGACY) {
  try {
    return isAddressEqual(await recoverProof(proof, signature, scheme), sender);
  } catch {
    return false;
  }
}

// closedBy reports whether signature is the receiver's closing signature in scheme: checked
// before it goes into a transaction, which would otherwise fail and cost gas.
export async function closedBy(receiver, { sender, openBlock, balance, contract, chainId }, signature, scheme) {
  try {
    const signer = scheme === TYPED
      ? await recoverTypedDataAddress({
        ...typedData('ClosingBalance', { sender: getAddress(sender), openBlock, balance }, { chainId, contract }), signature,
      })
      : await recoverAddress({
        hash: legacyHash('Receiver closing signature', 'address sender', sender, { openBlock, balance, contract }), signature,
      });
    return isAddressEqual(signer, receiver);
  } catch {
    return false;
  }
}

// A wallet without a method answers 4200 (EIP-1193's unsupported method), or passes the call
// to its node, which answers -32601 (JSON-RPC's method not found).
function unsupported(err) {
  const code = err?.code ?? err?.cause?.code;
  return code === 4200 || code === -32601;
}

// Set once the wallet said it has no eth_signTypedData_v4, so the page asks it no more.
let noTypedData = false;

// signBalance asks the wallet to sign a balance in the best scheme both the server and the
// wallet have: typed (eth_signTypedData_v4) when the server offers it, else legacy
// (eth_signTypedData v1). The wallet shows the message and the person approves it or not;
// nothing here signs on its own. A wallet that hashes the message another way would make a
// proof the server refuses; it is caught here, before it is stored. Returns the signature
// and its scheme; a close request must then be signed in the same scheme.
export async function signBalance(ethereum, account, proof, offered) {
  if (offered.includes(TYPED) && !noTypedData) {
    try {
      return { signature: await signTyped(ethereum, account, typedBalanceProof(proof), 'payment'), scheme: TYPED };
    } catch (err) {
      if (!unsupported(err)) throw err;
      noTypedData = true;
      if (!offered.includes(LEGACY)) {
        throw new Error('your wallet cannot sign EIP-712 typed data (eth_signTypedData_v4), the only format this server takes; try another wallet');
      }
    }
  }
  if (!offered.includes(LEGACY)) throw new Error('this server takes no proof format this page can sign');
  let signature;
  try {
    signature = await ethereum.request({
      method: 'eth_signTypedData',
      params: [balanceProofTypedData(proof), account],
    });
  } catch (err) {
    if (unsupported(err)) {
      throw new Error('your wallet cannot sign the legacy typed data (eth_signTypedData v1) this server needs; try another wallet');
    }
    throw err;
  }
  if (typeof signature !== 'string' || !(await signedBy(account, proof, signature, LEGACY))) {
    throw new Error('your wallet did not sign the payment in the legacy typed-data format this server needs (eth_signTypedData v1); try another wallet');
  }
  return { signature, scheme: LEGACY };
}

// signTyped asks for an eth_signTypedData_v4 signature (numbers as decimal strings, as
// wallets take them) and checks that it recovers to the account.
async function signTyped(ethereum, account, data, what) {
  const signature = await ethereum.request({ method: 'eth_signTypedData_v4', params: [account, serializeTypedData(data)] });
  let signer = null;
  try {
    signer = await recoverTypedDataAddress({ ...data, signature });
  } catch {
    // not a signature: refused below
  }
  if (typeof signature !== 'string' || !signer || !isAddressEqual(signer, account)) {
    throw new Error(`your wallet did not sign the ${what} as EIP-712 typed data (eth_signTypedData_v4); try another wallet`);
  }
  return signature;
}

// closeRequestText is the close request the server needs besides the balance proof to sign
// a cooperative close (docs/protocol.md §5): a personal message made only to close,
// which a payment proof seen by others cannot stand in for. Addresses are checksummed,
// numbers decimal, expiry in Unix seconds.
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

// signCloseRequest asks the wallet to sign a close request in scheme, that of the balance
// proof it goes with: typed, the EIP-712 CloseRequest; legacy, the text above with
// personal_sign (EIP-191), as every wallet can. The signature is checked before it is sent.
export async function signCloseRequest(ethereum, account, request, scheme) {
  if (scheme === TYPED) return signTyped(ethereum, account, typedCloseRequest(request), 'close request');
  const message = closeRequestText(request);
  const signature = await ethereum.request({ method: 'personal_sign', params: [toHex(message), account] });
  let signer;
  try {
    signer = await recoverMessageAddress({ message, signature });
  } catch {
    signer = null;
  }
  if (typeof signature !== 'string' || !signer || !isAddressEqual(signer, account)) {
    throw new Error('your wallet did not sign the close request as a personal message (personal_sign); try another wallet');
  }
  return signature;
}

// The highest balance this browser signed for each channel: what the page can vouch for when
// the server reports a balance.
export function rememberSigned(channelKey, balance) {
  if (balance > signedHere(channelKey)) localStorage.setItem(`rdn-signed:${channelKey}`, balance.toString());
}

export function signedHere(channelKey) {
  return BigInt(localStorage.getItem(`rdn-signed:${channelKey}`) ?? '0');
}

// The request cookies the server reads a payment from when a request carries no RDN-*
// headers (protocol.md §3), RDN-Proof-Scheme naming the proof's scheme. The server sets the
// same names from its 402, path /.
const cookieNames = ['RDN-Sender-Address', 'RDN-Open-Block', 'RDN-Sender-Balance', 'RDN-Balance-Signature', 'RDN-Proof-Scheme'];

// storePayment keeps a signed payment for the next request. The scheme is always named, not
// left out for legacy: a typed proof's cookie from before must not stay beside it.
export function storePayment({ sender, openBlock, balance, signature, scheme }) {
  const values = [sender, openBlock.toString(), balance.toString(), signature, scheme];
  cookieNames.forEach((name, i) => setCookie(name, values[i]));
}

// forgetPayment removes a proof the server will never take again (its channel is closed).
export function forgetPayment() {
  for (const name of cookieNames) setCookie(name, '', 0);
}

export function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return '';
}

function setCookie(name, value, maxAge) {
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  const age = maxAge === undefined ? '' : `; Max-Age=${maxAge}`;
  document.cookie = `${name}=${value}; Path=/; SameSite=Lax${age}${secure}`;
}
