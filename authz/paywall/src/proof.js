// Balance proofs as µRaiden's servers verify them, and the cookies that carry them.
import { encodePacked, keccak256, recoverAddress, recoverMessageAddress, isAddressEqual, getAddress, toHex } from 'viem';

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

// balanceProofHash is the hash the typed data above stands for (protocol.md §2).
export function balanceProofHash({ receiver, openBlock, balance, contract }) {
  const schema = keccak256(encodePacked(
    ['string', 'string', 'string', 'string', 'string'],
    ['string message_id', 'address receiver', 'uint32 block_created', 'uint192 balance', 'address contract'],
  ));
  const values = keccak256(encodePacked(
    ['string', 'address', 'uint32', 'uint192', 'address'],
    ['Sender balance proof signature', receiver, openBlock, balance, contract],
  ));
  return keccak256(encodePacked(['bytes32', 'bytes32'], [schema, values]));
}

// signedBy reports whether signature is sender's balance proof; false for anything malformed.
export async function signedBy(sender, proof, signature) {
  try {
    return isAddressEqual(await recoverAddress({ hash: balanceProofHash(proof), signature }), sender);
  } catch {
    return false;
  }
}

// signBalance asks the wallet to sign a balance: the wallet shows the message and the person
// approves it or not. Nothing here signs on its own. A wallet that hashes the message another
// way (as EIP-712 instead of the legacy format) would make a proof the server refuses; it is
// caught here, before it is stored.
export async function signBalance(ethereum, account, proof) {
  const signature = await ethereum.request({
    method: 'eth_signTypedData',
    params: [balanceProofTypedData(proof), account],
  });
  if (typeof signature !== 'string' || !(await signedBy(account, proof, signature))) {
    throw new Error('your wallet did not sign the payment in the legacy typed-data format this server needs (eth_signTypedData v1); try another wallet');
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

// signCloseRequest asks the wallet to sign a close request with personal_sign (EIP-191), as
// every wallet can; the signature is checked before it is sent.
export async function signCloseRequest(ethereum, account, request) {
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
// headers (protocol.md §3). The server sets the same names from its 402, path /.
const cookieNames = ['RDN-Sender-Address', 'RDN-Open-Block', 'RDN-Sender-Balance', 'RDN-Balance-Signature'];

export function storePayment({ sender, openBlock, balance, signature }) {
  const values = [sender, openBlock.toString(), balance.toString(), signature];
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
