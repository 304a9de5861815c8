// Balance proofs as µRaiden's servers verify them, and the cookies that carry them.

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

// signBalance asks the wallet to sign a balance: the wallet shows the message and the person
// approves it or not. Nothing here signs on its own.
export async function signBalance(ethereum, account, proof) {
  const signature = await ethereum.request({
    method: 'eth_signTypedData',
    params: [balanceProofTypedData(proof), account],
  });
  if (typeof signature !== 'string' || !/^0x[0-9a-fA-F]{130}$/.test(signature)) {
    throw new Error('the wallet returned no 65-byte signature');
  }
  return signature;
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

function setCookie(name, value, maxAge) {
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  const age = maxAge === undefined ? '' : `; Max-Age=${maxAge}`;
  document.cookie = `${name}=${value}; Path=/; SameSite=Lax${age}${secure}`;
}
