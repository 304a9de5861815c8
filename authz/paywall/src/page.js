// What the paywall keeps in the browser: the payment cookies the server reads (protocol.md
// §3), the channel this browser used and the highest balance it signed (localStorage).

// The request cookies the server reads a payment from when a request carries no RDN-*
// headers, RDN-Proof-Scheme naming the proof's scheme. The server sets the same names from
// its 402, path /.
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

// The highest balance this browser signed for each channel: what the page can vouch for when
// the server reports a balance.
export function rememberSigned(channelKey, balance) {
  if (balance > signedHere(channelKey)) localStorage.setItem(`rdn-signed:${channelKey}`, balance.toString());
}

export function signedHere(channelKey) {
  return BigInt(localStorage.getItem(`rdn-signed:${channelKey}`) ?? '0');
}

// The open block of the channel this browser last used with a receiver's contract, looked at
// before the contract's creation events.
export function rememberChannel(contract, receiver, sender, openBlock) {
  localStorage.setItem(channelStorageKey(contract, receiver, sender), String(openBlock));
}

export function rememberedChannel(contract, receiver, sender) {
  return Number(localStorage.getItem(channelStorageKey(contract, receiver, sender))) || undefined;
}

function channelStorageKey(contract, receiver, sender) {
  return `rdn-channel:${contract}:${receiver}:${sender}`.toLowerCase();
}
