// The paywall: what a person sees instead of a priced page until they pay for it.
//
// Every step is explained, and every signature and transaction starts from a button the
// person pressed; the wallet then asks them again. The server's 402 put its view of the
// payment into the page's data-* attributes; the chain and the channel API give the rest.
// The protocol, the wallet's signatures and the channel transactions are uraiden's
// JavaScript client library's (clients/js), which the bundle carries.
import { createClient, custom, formatUnits, parseUnits, getAddress } from 'viem';
import { Channels } from '../../../clients/js/src/channels.js';
import { askClosingSignature } from '../../../clients/js/src/close.js';
import { LEGACY, TYPED, offeredSchemes, signedBy } from '../../../clients/js/src/proof.js';
import { signPayment, walletSigner } from '../../../clients/js/src/signer.js';
import {
  storePayment, forgetPayment, readCookie, rememberSigned, signedHere, rememberChannel, rememberedChannel,
} from './page.js';

const root = document.getElementById('rdn-paywall');
const quote = readQuote(root.dataset);
const ethereum = window.ethereum;
const channels = ethereum && new Channels(createClient({ transport: custom(ethereum), pollingInterval: 1000 }), quote);
// One signer per account: a wallet that said it has no eth_signTypedData_v4 is asked no more
// until the page is reloaded.
const signers = new Map();

// The view's state: refreshed from the wallet, the chain and the server by refresh().
let view = { step: 'loading' };
let busy = '';
let notice = '';
let pollTimer;
let generation = 0; // of refresh(): an older one finishing late must not overwrite a newer view

function readQuote(d) {
  return {
    status: Number(d.status),
    flag: d.flag,
    message: d.message,
    price: BigInt(d.price),
    receiver: getAddress(d.receiver),
    contract: getAddress(d.contract),
    token: getAddress(d.token),
    chainId: Number(d.chainId),
    gatewayPath: d.gatewayPath.replace(/\/$/, ''),
    sender: d.sender ? getAddress(d.sender) : null,
    openBlock: d.openBlock ? Number(d.openBlock) : null,
    senderBalance: d.senderBalance ? BigInt(d.senderBalance) : null,
    // The proof schemes the server takes, preferred first.
    schemes: offeredSchemes(d.proofSchemes),
  };
}

// ---- Reading the situation ----

async function refresh() {
  const mine = ++generation;
  let next;
  try {
    next = await situation();
  } catch (err) {
    next = { ...view, step: 'error', error: explain(err) };
  }
  if (mine !== generation) return;
  view = next;
  render();
  clearTimeout(pollTimer);
  // Steps that end by themselves, as blocks come: look again soon.
  if (view.step === 'confirming' || view.step === 'closing') pollTimer = setTimeout(refresh, 2000);
}

async function situation() {
  if (!ethereum) return { step: 'no-wallet' };
  const [account] = await ethereum.request({ method: 'eth_accounts' });
  if (!account) return { step: 'connect' };
  const sender = getAddress(account);
  const chainId = Number(await ethereum.request({ method: 'eth_chainId' }));
  if (chainId !== quote.chainId) return { step: 'switch-chain', sender, chainId };

  const [token, ch, block] = await Promise.all([
    channels.tokenInfo(sender), channels.find(sender, rememberedChannel(quote.contract, quote.receiver, sender)), channels.blockNumber(),
  ]);
  if (ch) rememberChannel(quote.contract, quote.receiver, sender, ch.openBlock);
  const v = { sender, token, block, channel: ch };
  if (!ch) return { ...v, step: 'open' };
  if (ch.settleBlock > 0n) return { ...v, step: 'closing' };
  v.vouched = await vouchedBalance(sender, ch);
  let server;
  try {
    server = await serverChannel(sender, ch.openBlock);
  } catch (err) {
    return { ...v, step: 'server-down', error: explain(err) };
  }
  v.server = server;
  if (!server || !server.confirmed) return { ...v, step: 'confirming' };
  // The server's balance is what the next payment adds to, and what a close pays it. Say so
  // when it is more than this browser can vouch for.
  v.unvouched = BigInt(server.balance) > v.vouched;
  if (server.state !== 'open') return { ...v, step: 'refused' };
  v.left = BigInt(server.confirmed_deposit) - BigInt(server.balance);
  if (v.left < quote.price) {
    // A top-up the server does not count yet: wait for it rather than ask for another.
    if (ch.deposit > BigInt(server.confirmed_deposit)) return { ...v, step: 'confirming', topUp: true };
    return { ...v, step: 'topup' };
  }
  return { ...v, step: 'pay' };
}

// serverChannel is the receiver's view of a channel (its public part), or null while the
// server has not seen it; it throws when the server does not answer.
async function serverChannel(sender, openBlock) {
  const res = await fetch(`${quote.gatewayPath}/channels/${sender}/${openBlock}`, { cache: 'no-store' });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`the server answered ${res.status} about the channel`);
  return res.json();
}

// vouchedBalance is the highest balance of the channel known to carry the sender's signature:
// signed in this browser, or the server's last proof that the 402 mirrored into the cookies
// (checked here, not trusted), in the scheme the server names beside it (none: legacy).
async function vouchedBalance(sender, ch) {
  const key = channelKey(sender, ch.openBlock);
  let vouched = signedHere(key);
  const b = quote.senderBalance;
  if (quote.sender === sender && quote.openBlock === ch.openBlock && b !== null && b > vouched) {
    const proof = { receiver: quote.receiver, openBlock: ch.openBlock, balance: b, contract: quote.contract, chainId: quote.chainId };
    const scheme = readCookie('RDN-Proof-Scheme') || LEGACY;
    if (await signedBy(sender, proof, readCookie('RDN-Balance-Signature'), scheme)) vouched = b;
  }
  return vouched;
}

function channelKey(sender, openBlock) {
  return `${quote.contract}:${quote.receiver}:${sender}:${openBlock}`.toLowerCase();
}

function signer(sender) {
  if (!signers.has(sender)) signers.set(sender, walletSigner(ethereum, sender));
  return signers.get(sender);
}

// sign asks the wallet for the channel's balance proof, and remembers the balance: typed when
// the server offers it and the wallet has eth_signTypedData_v4, else legacy. Returns the
// signature and its scheme.
async function sign(balance) {
  const ch = view.channel;
  const signed = await signPayment(signer(view.sender), {
    receiver: quote.receiver, openBlock: ch.openBlock, balance, contract: quote.contract, chainId: quote.chainId,
  }, [TYPED, LEGACY].filter((s) => quote.schemes.includes(s)));
  rememberSigned(channelKey(view.sender, ch.openBlock), balance);
  return signed;
}

// ---- Actions: each one runs from a button ----

async function act(label, fn) {
  busy = label;
  notice = '';
  render();
  try {
    await fn((text) => { busy = text; render(); });
  } catch (err) {
    notice = explain(err);
  }
  busy = '';
  await refresh();
}

const actions = {
  connect: () => act('Asking your wallet for an account…', () =>
    ethereum.request({ method: 'eth_requestAccounts' })),

  switchChain: () => act('Asking your wallet to switch networks…', () =>
    ethereum.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: `0x${quote.chainId.toString(16)}` }] })),

  open: withAmount('rdn-deposit', (deposit) => act('Opening the channel…', async (progress) => {
    const ch = await channels.open(view.sender, deposit, progress);
    rememberChannel(quote.contract, quote.receiver, view.sender, ch.openBlock);
    notice = `Channel opened in block ${ch.openBlock}.`;
  })),

  topUp: withAmount('rdn-topup-amount', (added) => act('Topping up…', async (progress) => {
    await channels.topUp(view.sender, view.channel.openBlock, added, progress);
    notice = 'Deposit added. The server counts it once enough blocks follow.';
  })),

  pay: () => act('Asking your wallet to sign the payment…', async () => {
    const balance = BigInt(view.server.balance) + quote.price;
    const { signature, scheme } = await sign(balance);
    storePayment({ sender: view.sender, openBlock: view.channel.openBlock, balance, signature, scheme });
    busy = 'Payment signed. Loading the page…';
    render();
    location.reload();
    await new Promise(() => {}); // the page is going away
  }),

  close: () => act('Closing the channel…', async (progress) => {
    const ch = view.channel;
    const balance = BigInt(view.server.balance);
    progress('Sign the final balance in your wallet: the contract pays the receiver what it says.');
    // The close request, the server's closing signature and the contract function all
    // follow the scheme the wallet signed the balance in.
    const { signature: balanceSig, scheme } = await sign(balance);
    progress('Sign the close request in your wallet: it proves to the server that you ask for the close.');
    // Checked before the transaction: a closing signature in another scheme, or for another
    // balance, would make the contract revert after the person paid for the gas.
    const closingSig = await askClosingSignature({
      signer: signer(view.sender), fetch: window.fetch.bind(window), api: quote.gatewayPath, sender: view.sender,
      receiver: quote.receiver, contract: quote.contract, chainId: quote.chainId, openBlock: ch.openBlock, balance,
      balanceSignature: balanceSig, scheme, signed: () => progress('Asking the server for its closing signature…'),
    });
    await channels.cooperativeClose(view.sender, ch.openBlock, balance, balanceSig, closingSig, scheme, progress);
    forgetPayment();
    notice = `Channel closed: ${money(balance)} went to the receiver, ${money(ch.deposit - balance)} came back to you.`;
  }),

  closeAlone: () => act('Asking to close without the server…', async (progress) => {
    // With the server down, close at what this browser can vouch for: if the receiver holds a
    // proof for more, it submits it during the challenge period.
    const balance = view.server ? BigInt(view.server.balance) : view.vouched;
    await channels.uncooperativeClose(view.sender, view.channel.openBlock, balance, progress);
    forgetPayment();
    notice = 'Close requested. After the challenge period you can settle and get the rest back.';
  }),

  settle: () => act('Settling…', async (progress) => {
    await channels.settle(view.sender, view.channel.openBlock, progress);
    forgetPayment();
    notice = 'Channel settled: the unspent deposit is back in your wallet.';
  }),
};

// withAmount reads an amount field before the action replaces the form with its progress.
function withAmount(id, action) {
  return () => {
    const text = document.getElementById(id).value.trim();
    let amount = 0n;
    try {
      amount = parseUnits(text, view.token.decimals);
    } catch {
      // not a number: refused below
    }
    if (amount <= 0n) {
      notice = `"${text}" is not an amount above zero.`;
      render();
      return;
    }
    action(amount);
  };
}

// ---- Showing it ----

function money(units) {
  const t = view.token;
  return t ? `${formatUnits(units, t.decimals)} ${t.symbol}` : `${units} base units`;
}

// What the server said about the proof in this browser's cookies, in plain words.
const flagText = {
  'RDN-Insufficient-Confirmations': 'The server is still waiting for enough blocks to follow your deposit.',
  'RDN-Nonexisting-Channel': 'The server no longer accepts payments from the channel this browser used.',
  'RDN-Invalid-Balance-Proof': 'The payment stored in this browser was not signed for this server; sign it again.',
  'RDN-Invalid-Amount': 'The payment stored in this browser did not match the server\'s count; pay again from the server\'s balance.',
  'RDN-Insufficient-Deposit': 'Your channel\'s deposit does not cover this page; top it up.',
};

const steps = {
  loading: () => [p('Looking at your wallet and your channel…')],
  'no-wallet': () => [
    p('To pay you need an Ethereum wallet in this browser (a browser extension such as MetaMask, or a wallet app\'s browser). Install one, then reload this page.'),
  ],
  connect: () => [
    p('Connect your wallet so this page can show your channel. Connecting only shares your address; nothing is signed or sent.'),
    button('rdn-connect', 'Connect wallet', actions.connect),
  ],
  'switch-chain': (v) => [
    p(`Your wallet is on network ${v.chainId}; this server is paid on network ${quote.chainId}.`),
    button('rdn-switch', 'Switch network', actions.switchChain),
  ],
  open: () => [
    p('You have no open payment channel with this site. Opening one locks a deposit of your tokens in the channel contract: pages are then paid from it by signature, without a transaction each time. You get back what you do not spend when you close it.'),
    p('Opening takes one or two transactions (allowing the contract to take the tokens, then the deposit), each confirmed in your wallet and paid for in gas.'),
    amountInput('rdn-deposit', 'Deposit', quote.price * 10n),
    button('rdn-open', 'Open the channel', actions.open),
  ],
  confirming: (v) => [
    p(!v.server
      ? `Your channel was opened in block ${v.channel.openBlock}; the server has not seen it yet. This page checks again every few seconds.`
      : `Your ${v.topUp ? 'top-up' : `channel (opened in block ${v.channel.openBlock})`} is on the chain, which is at block ${v.block} now. The server counts a deposit once enough blocks follow it, so that it cannot disappear in a reorganisation. This page checks again every few seconds.`),
    ...closeButtons(v),
  ],
  pay: (v) => [
    p(`Paying signs a new total of ${money(BigInt(v.server.balance) + quote.price)} owed from your channel. It costs no gas and sends no transaction; the server keeps the signature and can claim the total when the channel closes.`),
    button('rdn-pay', `Pay ${money(quote.price)} and open the page`, actions.pay, 'primary'),
    ...topUpControls(),
    ...closeButtons(v),
  ],
  topup: (v) => [
    p(`${money(v.left)} is left in your channel, less than the price. Add to its deposit (a transaction), or close the channel to get the rest back.`),
    ...topUpControls(),
    ...closeButtons(v),
  ],
  'server-down': (v) => [
    p(`The server does not answer (${v.error}). Your deposit is safe in the contract. Try again later, or close the channel without the server.`),
    button('rdn-retry', 'Try again', refresh),
    ...closeButtons(v),
  ],
  refused: (v) => [
    p('The server no longer takes payments from this channel (it is being closed). Close it to get your unspent deposit back, then open a new one.'),
    ...closeButtons(v),
  ],
  closing: (v) => {
    const ready = v.block > v.channel.settleBlock;
    return [
      p(ready
        ? 'The challenge period of your close request is over: settle to pay the receiver and get the rest of the deposit back.'
        : `A close of this channel was requested. The receiver may prove a higher balance until block ${v.channel.settleBlock} (now ${v.block}); then you can settle.`),
      button('rdn-settle', 'Settle', actions.settle, '', !ready),
    ];
  },
  error: (v) => [p(`Something went wrong: ${v.error}`), button('rdn-retry', 'Try again', refresh)],
};

function topUpControls() {
  return [amountInput('rdn-topup-amount', 'Add', quote.price * 10n), button('rdn-topup', 'Top up', actions.topUp)];
}

function closeButtons(v) {
  const out = [];
  if (v.server && v.server.state !== 'settled') {
    out.push(button('rdn-close', 'Close the channel', actions.close));
  }
  out.push(button('rdn-close-alone', 'Close without the server', actions.closeAlone, 'quiet'));
  out.push(p('Closing pays the receiver what you spent and returns the rest at once. Without the server, the rest stays locked until a challenge period (hundreds of blocks) has passed; then you settle.', 'small'));
  return out;
}

function render() {
  const v = view;
  const panel = el('section', { class: 'rdn-panel', 'data-step': busy ? 'busy' : v.step, id: 'rdn-step' });
  panel.append(el('h2', {}, `Price: ${money(quote.price)}`));
  if (quote.flag && flagText[quote.flag]) panel.append(p(flagText[quote.flag], 'flag'));
  if (v.unvouched && !busy) {
    panel.append(p(`The server counts ${money(BigInt(v.server.balance))} as spent from this channel, more than this browser signed (${money(v.vouched)}). If you paid from another browser or device, that is expected. If not, do not pay: close the channel without the server.`, 'flag'));
  }
  if (quote.status === 409) panel.append(p(`The payment stored in this browser could not be read (${quote.message}); pay again.`, 'flag'));
  if (v.sender) panel.append(facts(v));
  if (notice) panel.append(p(notice, 'notice'));
  if (busy) {
    panel.append(p(busy, 'busy'));
  } else {
    panel.append(...steps[v.step](v));
  }
  const old = document.getElementById('rdn-step');
  if (old) old.replaceWith(panel); else root.append(panel);
}

function facts(v) {
  const rows = [['Your account', v.sender]];
  if (v.token) rows.push(['In your wallet', money(v.token.balance)]);
  if (v.channel) {
    rows.push(['Channel', `opened in block ${v.channel.openBlock}`], ['Deposit', money(v.channel.deposit)]);
  }
  if (v.server) rows.push(['Spent', money(BigInt(v.server.balance))]);
  if (v.left !== undefined) rows.push(['Left to spend', money(v.left)]);
  const dl = el('dl', { id: 'rdn-facts' });
  for (const [k, val] of rows) dl.append(el('dt', {}, k), el('dd', {}, val));
  return dl;
}

function explain(err) {
  const code = err?.code ?? err?.cause?.code;
  if (code === 4001) return 'You declined in your wallet; nothing was signed or sent.';
  if (code === 4902) return `Your wallet does not know network ${quote.chainId}; add it in the wallet (the site's operator gives its RPC address), then try again.`;
  return err?.shortMessage || err?.message || String(err);
}

function p(text, cls = '') {
  return el('p', cls ? { class: cls } : {}, text);
}

function button(id, label, onClick, cls = '', disabled = false) {
  const b = el('button', { id, type: 'button', class: cls }, label);
  b.disabled = disabled;
  b.addEventListener('click', onClick);
  return b;
}

function amountInput(id, label, suggested) {
  const input = el('input', { id, inputmode: 'decimal', value: view.token ? formatUnits(suggested, view.token.decimals) : '' });
  return el('label', { for: id }, `${label} (${view.token?.symbol ?? 'tokens'}) `, input);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== '') node.setAttribute(k, v);
  node.append(...children);
  return node;
}

document.getElementById('rdn-js-needed')?.remove();
if (ethereum) {
  ethereum.on?.('accountsChanged', refresh);
  ethereum.on?.('chainChanged', refresh);
}
refresh();
