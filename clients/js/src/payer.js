// The payer: a fetch that answers a µRaiden 402 with a balance proof, as the Go client's
// Transport does (client/transport.go), and the channels it pays from.
import { createClient, getAddress, http, isAddress, isAddressEqual } from 'viem';
import { getChainId } from 'viem/actions';
import { readBounded } from './body.js';
import { Channels, checkContract, mutex } from './channels.js';
import { askClosingSignature } from './close.js';
import {
  BadServerProofError, CloseRefusedError, CloseRequestedError, NotOnChainError, PaymentTimeoutError, PriceTooHighError,
  SpendingCapError, UntrustedContractError,
} from './errors.js';
import { LEGACY, TYPED, parseScheme, signedBy } from './proof.js';
import { chooseScheme, parseProofSchemeChoice, readOffer } from './scheme.js';
import { signPayment } from './signer.js';
import { memoryStore } from './store.js';

/** @typedef {import('viem').Address} Address */
/** @typedef {import('viem').Hex} Hex */
/** @typedef {import('./proof.js').Scheme} Scheme */

/**
 * @typedef {object} PayerOptions
 * @property {import('./signer.js').Signer} signer keySigner(…) or walletSigner(…)
 * @property {string} [rpcUrl] the chain's JSON-RPC URL; needed with a key signer (a wallet
 *   signer reaches the chain through the wallet)
 * @property {import('viem').Transport} [transport] instead of rpcUrl, any viem transport
 * @property {string} [contract] the trusted channel contract: a 402 naming another is refused.
 *   Unset, the first 402's contract is trusted once it proves to be a channel contract
 * @property {import('./store.js').Store} [store] channels and signed balances (memoryStore())
 * @property {'auto' | Scheme} [proofScheme] auto (typed when the server offers it for this
 *   chain and contract), eip712 or legacy
 * @property {number} [openFactor] a new channel's deposit is openFactor × the price (10)
 * @property {number} [topUpFactor] a top-up adds topUpFactor × the price (5); either grows to
 *   cover the payment at hand
 * @property {bigint} [maxPrice] the most one request may cost
 * @property {bigint} [maxSpend] the most this payer pays in all
 * @property {number} [wait] ms to wait for the server to count a new channel or top-up (120000)
 * @property {typeof fetch} [fetch] sends the requests (globalThis.fetch)
 * @property {bigint} [fromBlock] where the search for the sender's channels starts (0)
 * @property {number} [pollingInterval] ms between looks for a transaction's receipt (1000)
 * @property {(message: string, fields?: Record<string, unknown>) => void} [log]
 */

/**
 * A channel as the payer keeps it.
 * @typedef {object} ChannelRecord
 * @property {Address} receiver
 * @property {number} openBlock
 * @property {bigint} deposit as last read from the chain
 * @property {bigint} balance the highest balance signed (or adopted from the server)
 * @property {Hex | null} signature its proof
 * @property {Scheme | null} scheme the proof's scheme
 * @property {'open' | 'closing' | 'closed'} state on chain: closing once an uncooperative
 *   close was requested, closed when settled or closed cooperatively
 * @property {bigint} settleBlock
 * @property {boolean} closeAsked the server was asked for a cooperative close: nothing more
 *   is paid from the channel
 * @property {string | null} api the server's channel API, from its 402
 */

/**
 * @typedef {object} Quote what a 402 asks for
 * @property {Address} receiver
 * @property {bigint} price
 * @property {string | null} api
 * @property {Scheme} scheme the scheme to sign in
 * @property {string} why
 * @property {Scheme[]} offered
 */

/**
 * @typedef {object} Payment one signed balance proof
 * @property {Address} receiver
 * @property {number} openBlock
 * @property {bigint} balance
 * @property {Hex} signature
 * @property {Scheme} scheme
 */

const GIVE_UP = 0; // hand the 402 to the caller
const RESEND = 1; // send the same proof again, after a wait
const FRESH = 2; // sign a new balance

// maxFresh bounds the new balances signed for one request: a server that keeps refusing
// fresh proofs is not going to be paid into.
const maxFresh = 4;

// maxRedirects bounds the redirects of paid requests the payer follows, as fetch bounds its own.
const maxRedirects = 20;

/** @param {PayerOptions} options */
export function createPayer(options) {
  return new Payer(options);
}

export class Payer {
  /** @param {PayerOptions} options */
  constructor(options) {
    const { signer } = options;
    if (!signer || typeof signer.signBalance !== 'function') throw new TypeError('createPayer: a signer (keySigner or walletSigner) is required');
    const transport = options.transport ?? signer.transport ?? (options.rpcUrl ? http(options.rpcUrl) : null);
    if (!transport) throw new TypeError('createPayer: a key signer needs rpcUrl (or transport): the chain to open channels on');
    for (const name of /** @type {const} */ (['maxPrice', 'maxSpend'])) {
      if (options[name] !== undefined && typeof options[name] !== 'bigint') throw new TypeError(`createPayer: ${name} is a bigint of token base units`);
    }
    this.signer = signer;
    /** The address that signs balances and owns the channels. */
    this.sender = signer.address;
    this.client = createClient({ transport, pollingInterval: options.pollingInterval ?? 1000 });
    this.store = options.store ?? memoryStore();
    this.choice = parseProofSchemeChoice(options.proofScheme);
    this.openFactor = BigInt(options.openFactor ?? 10);
    this.topUpFactor = BigInt(options.topUpFactor ?? 5);
    if (this.openFactor <= 0n || this.topUpFactor <= 0n) throw new TypeError('createPayer: openFactor and topUpFactor are positive');
    this.maxPrice = options.maxPrice;
    this.maxSpend = options.maxSpend;
    this.wait = options.wait ?? 120_000;
    this.baseFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.fromBlock = options.fromBlock ?? 0n;
    this.log = options.log ?? (() => {});
    /** @type {Address | null} */
    this.configured = options.contract ? getAddress(options.contract) : null;
    /** @type {Address | null} */
    this.trusted = this.configured;
    /** @type {Promise<{ contract: Address, token: Address, chainId: number }> | null} */
    this.ready = null;
    /** @type {{ contract: Address, token: Address, chainId: number } | null} what ready resolved to */
    this.resolved = null;
    // state guards the store's records and the balances signed (the Go client's c.mu): the
    // next balance is taken, signed and saved under it, so no value is signed twice.
    this.state = mutex();
    // funding lets one request at a time open or top up channels (fundMu); transactions
    // (tx) take the sender's nonces one after the other (txMu).
    this.funding = mutex();
    this.tx = mutex();
    /** @type {Set<string>} receivers whose channels were read from the chain */
    this.scanned = new Set();
    /** @type {Map<string, Channels>} */
    this.byReceiver = new Map();
    this.spentSoFar = 0n;
    /** @type {{ scheme: Scheme | null, why: string }} */
    this.lastScheme = { scheme: null, why: '' };
    /** A fetch that pays: the payer's fetch, bound, to hand to code that takes a fetch. */
    this.fetch = this.fetch.bind(this);
  }

  /** The sum of the prices paid so far. */
  get spent() {
    return this.spentSoFar;
  }

  /** The scheme of the last proof signed and why it was chosen (null before the first). */
  get proofScheme() {
    return { ...this.lastScheme };
  }

  /**
   * fetch sends the request; on a µRaiden 402 it pays and sends it again, and returns the
   * answer to the paid request. A 402 it cannot act on (no RDN-Price, a proof the server
   * does not take) is returned as it is.
   * @param {RequestInfo | URL} input
   * @param {RequestInit} [init]
   * @returns {Promise<Response>}
   */
  async fetch(input, init) {
    const req = new Request(input, init);
    // Read once, so that it can be sent again.
    const body = req.body ? await req.arrayBuffer() : null;
    return this.send(req, body, 0);
  }

  /**
   * The payer's channels, from its store (to one receiver, or all).
   * @param {string} [receiver]
   * @returns {Promise<ChannelRecord[]>}
   */
  async channels(receiver) {
    if (!this.ready && !this.trusted) return [];
    const { chainId, contract } = await this.setup();
    return this.records(chainId, contract, receiver ? getAddress(receiver) : undefined);
  }

  /**
   * Closes a channel cooperatively: asks the server (its channel API, learned from its 402s,
   * or api) for the receiver's closing signature on the channel's last balance, checks it,
   * and sends cooperativeClose (cooperativeCloseTyped for a typed close): the channel
   * settles at once, the receiver gets the balance and the rest comes back. The close is in
   * the scheme of the channel's last proof (or the forced one; the last balance is then
   * signed again in it). Nothing more is paid from the channel once the server is asked.
   * @param {{ receiver: string, openBlock: number, api?: string }} channel
   * @returns {Promise<ChannelRecord>} the channel afterwards (state closed)
   */
  async close({ receiver: r, openBlock, api }) {
    const receiver = getAddress(r);
    const ch = await this.channelsFor(receiver);
    const info = await ch.info(this.sender, openBlock);
    if (!info) {
      await this.refresh(receiver, openBlock);
      throw new NotOnChainError(receiver, openBlock);
    }
    if (info.settleBlock > 0n) throw new CloseRequestedError(receiver, openBlock, info.settleBlock);
    const rec = await this.setCloseAsked(receiver, openBlock, true);
    if (!rec) throw new Error(`close: no stored channel ${receiver}/${openBlock} (pay through it, or list the channels first)`);
    const base = api ?? rec.api;
    let granted = false;
    try {
      if (!base) throw new Error('close: the server\'s channel API is unknown: pay through it once, or give api');
      /** @type {Scheme} */
      const scheme = this.choice === 'auto' ? (rec.scheme ?? LEGACY) : this.choice;
      let { balance, signature } = await this.lastProof(rec, scheme);
      /** @type {Hex} */
      let closing;
      try {
        closing = await this.askClose(base, rec, balance, signature, scheme);
      } catch (err) {
        if (!(err instanceof CloseRefusedError) || err.balance === null || err.balance >= balance) throw err;
        // Values signed but never delivered: close at what the server accepted, less than
        // what we signed, with a proof for that balance.
        this.log('closing at the server\'s lower balance', { receiver, openBlock, ours: balance, server: err.balance });
        balance = err.balance;
        signature = await this.signer.signBalance(this.message(receiver, openBlock, balance), scheme);
        closing = await this.askClose(base, rec, balance, signature, scheme);
      }
      granted = true;
      await ch.cooperativeClose(this.signer.account, openBlock, balance, signature, closing, scheme);
      this.log('channel closed cooperatively', { receiver, openBlock, balance, scheme });
    } catch (err) {
      if (!granted) {
        // The server signed no close: the channel still takes payments.
        await this.setCloseAsked(receiver, openBlock, false);
      }
      throw err;
    }
    return this.refresh(receiver, openBlock);
  }

  // ---- Paying ----

  /**
   * Sends req unpaid, following redirects as its redirect mode says, and pays a µRaiden 402
   * where it came from: a redirect's target is quoted and paid, never the URL that
   * redirected (the Go client pays the one hop that answered 402 too).
   * @param {Request} req
   * @param {ArrayBuffer | null} body
   * @param {number} hops redirects the payer followed itself so far
   * @returns {Promise<Response>}
   */
  async send(req, body, hops) {
    const res = await this.baseFetch(this.request(req, body, null));
    if (res.status !== 402) return res;
    // A Response made by a custom fetch may have no url.
    const at = res.url || req.url;
    const q = await this.readQuote(at, res);
    if (!q) return res; // a 402 that is not µRaiden's: the caller's business
    await discard(res);
    return this.pay(at === req.url ? req : derive(req, { url: at, body }), body, q, hops);
  }

  /**
   * Reserves a balance, sends it and reacts to the server's flags until the request is
   * answered with something other than a 402 it can act on.
   * @param {Request} req
   * @param {ArrayBuffer | null} body
   * @param {Quote} q
   * @param {number} hops
   */
  async pay(req, body, q, hops) {
    const deadline = Date.now() + this.wait;
    let delay = 50;
    /** @type {Payment | null} */
    let p = null;
    let signed = 0;
    for (;;) {
      if (!p) {
        p = await this.reserve(q);
        signed++;
      }
      const res = await this.baseFetch(this.request(req, body, p));
      if (res.type === 'opaqueredirect' || isRedirect(res.status)) return this.redirected(req, body, res, hops);
      if (res.status !== 402) return res;
      const nq = await this.readQuote(req.url, res).catch(async (err) => { await discard(res); throw err; });
      if (!nq) return res;
      const next = await this.react(p, nq, res.headers).catch(async (err) => { await discard(res); throw err; });
      if (next === GIVE_UP || (next === FRESH && signed >= maxFresh)) return res;
      await discard(res);
      q = nq; // a changed price is paid from the next proof on
      if (next === FRESH) {
        p = null;
        continue;
      }
      if (Date.now() > deadline) throw new PaymentTimeoutError(req.url, this.wait);
      await sleep(delay, req.signal);
      delay = Math.min(2 * delay, 2000);
    }
  }

  /**
   * Follows the redirect a paid request was answered with, as fetch would but without the
   * proof: a 402 at the target is paid there. A browser hides the Location of a redirect
   * that is not followed (an opaqueredirect): that is returned as it is.
   * @param {Request} req the paid request, without its RDN-* headers
   * @param {ArrayBuffer | null} body
   * @param {Response} res
   * @param {number} hops
   * @returns {Promise<Response>}
   */
  async redirected(req, body, res, hops) {
    const location = res.headers.get('Location');
    if (location === null && res.type !== 'opaqueredirect') return res; // fetch returns a 3xx without Location too
    if (req.redirect === 'error') {
      await discard(res);
      throw new TypeError(`fetch ${req.url}: redirected, and the redirect mode is error`);
    }
    if (req.redirect === 'manual' || location === null) return res;
    await discard(res);
    if (hops >= maxRedirects) throw new TypeError(`fetch ${req.url}: more than ${maxRedirects} redirects`);
    /** @type {URL} */
    let url;
    try {
      url = new URL(location, req.url);
    } catch (err) {
      throw new TypeError(`fetch ${req.url}: redirected to ${JSON.stringify(location)}`, { cause: err });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`fetch ${req.url}: redirected to ${url.protocol}`);
    // fetch's rules (WHATWG Fetch, HTTP-redirect fetch): 303 and a POST's 301 and 302 go on
    // as a GET without the body; credentials stay with their origin.
    let { method } = req;
    let next = body;
    const headers = new Headers(req.headers);
    if ((res.status === 303 && method !== 'GET' && method !== 'HEAD') || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = 'GET';
      next = null;
      for (const name of ['Content-Encoding', 'Content-Language', 'Content-Location', 'Content-Type']) headers.delete(name);
    }
    if (url.origin !== new URL(req.url).origin) headers.delete('Authorization');
    return this.send(derive(req, { url: url.href, method, headers, body: next }), next, hops + 1);
  }

  /**
   * What a 402 to payment p means (docs/protocol.md §4, the flags).
   * @param {Payment} p
   * @param {Quote} q
   * @param {Headers} h
   */
  async react(p, q, h) {
    const at = { receiver: p.receiver, openBlock: p.openBlock, balance: p.balance };
    if (h.get('RDN-Insufficient-Confirmations')) {
      this.log('waiting for the server to count the channel', at);
      return RESEND;
    }
    if (h.get('RDN-Nonexisting-Channel')) return this.nonexisting(p, q);
    if (h.get('RDN-Invalid-Amount')) {
      await this.adopt(p, h);
      return FRESH;
    }
    if (h.get('RDN-Insufficient-Deposit')) {
      this.log('the server counts less deposit than the balance', at);
      await this.cover(q, p);
      return RESEND;
    }
    if (h.get('RDN-Invalid-Balance-Proof')) {
      this.log('the server refuses the proof', at);
      return GIVE_UP;
    }
    return FRESH; // the proof was replayed, or the price changed: sign a fresh one
  }

  /**
   * RDN-Nonexisting-Channel: a channel the chain holds open is one the server has not seen
   * yet (wait), unless the server says it is closing (its close was asked elsewhere); any
   * other is gone (forget it, pay with another).
   * @param {Payment} p
   * @param {Quote} q
   */
  async nonexisting(p, q) {
    const rec = await this.refresh(p.receiver, p.openBlock);
    if (rec.state === 'open' && !(await this.serverClosing(q.api, p.openBlock))) return RESEND;
    if (rec.state === 'open') await this.setCloseAsked(p.receiver, p.openBlock, true);
    this.log('channel no longer open; paying from another', { receiver: p.receiver, openBlock: p.openBlock, state: rec.state });
    return FRESH;
  }

  /**
   * Whether the server's channel API says it takes no more payments on the channel.
   * @param {string | null} api
   * @param {number} openBlock
   */
  async serverClosing(api, openBlock) {
    if (!api) return false;
    try {
      const res = await this.baseFetch(`${api}/channels/${this.sender}/${openBlock}`, { cache: 'no-store' });
      if (!res.ok) {
        await discard(res);
        return false; // 404: not seen yet
      }
      const ch = await res.json();
      return typeof ch?.state === 'string' && ch.state !== 'open';
    } catch {
      return false;
    }
  }

  /**
   * RDN-Invalid-Amount: takes the server's last accepted balance when it is our proof and
   * above ours (a payer that lost its store, or signed values that never arrived).
   * @param {Payment} p
   * @param {Headers} h
   */
  async adopt(p, h) {
    const text = h.get('RDN-Sender-Balance');
    const signature = h.get('RDN-Balance-Signature');
    if (!signature) return;
    if (!text || !/^\d{1,78}$/.test(text)) throw new BadServerProofError(`RDN-Sender-Balance ${JSON.stringify(text)}`);
    const balance = BigInt(text);
    // Checked in the scheme the server says it is in: a channel may hold proofs of both.
    const scheme = parseScheme(h.get('RDN-Proof-Scheme') ?? LEGACY);
    if (!scheme) throw new BadServerProofError(`RDN-Proof-Scheme ${JSON.stringify(h.get('RDN-Proof-Scheme'))}`);
    const { chainId, contract } = await this.setup();
    if (!(await signedBy(this.sender, this.message(p.receiver, p.openBlock, balance), signature, scheme))) {
      throw new BadServerProofError(`RDN-Balance-Signature for ${balance} in scheme ${scheme} is not signed by ${this.sender}`);
    }
    await this.state(async () => {
      const rec = await this.load(chainId, contract, p.receiver, p.openBlock);
      if (!rec || balance <= rec.balance) return;
      this.log('adopting the server\'s balance', { receiver: p.receiver, openBlock: p.openBlock, ours: rec.balance, server: balance });
      Object.assign(rec, { balance, signature: /** @type {Hex} */ (signature), scheme });
      await this.save(chainId, contract, rec);
    });
  }

  /**
   * RDN-Insufficient-Deposit: tops the channel up when the chain's deposit does not cover the
   * balance sent; otherwise the server has not counted the last top-up yet (wait).
   * @param {Quote} q
   * @param {Payment} p
   */
  async cover(q, p) {
    await this.funding(async () => {
      const rec = await this.refresh(p.receiver, p.openBlock);
      if (rec.state !== 'open' || rec.deposit >= p.balance) return;
      await this.topUp(rec, this.topUpAmount(q.price, p.balance - rec.deposit));
    });
  }

  /** @param {bigint} price @param {bigint} missing */
  topUpAmount(price, missing) {
    const amount = price * this.topUpFactor;
    return amount < missing ? missing : amount;
  }

  /**
   * The next balance on a channel with room for the price, funding one first when none has.
   * @param {Quote} q
   * @returns {Promise<Payment>}
   */
  async reserve(q) {
    for (;;) {
      const p = await this.take(q);
      if (p) return p;
      await this.provide(q);
    }
  }

  /**
   * Signs balance + price on the open channel to q.receiver with the most room, if it has
   * room for the price. Under the state lock: requests in flight on one channel each get
   * their own balance, signed once, and the server takes them in any order.
   * @param {Quote} q
   * @returns {Promise<Payment | null>}
   */
  async take(q) {
    const { chainId, contract } = await this.setup();
    return this.state(async () => {
      if (this.maxSpend !== undefined && this.spentSoFar + q.price > this.maxSpend) {
        throw new SpendingCapError(this.maxSpend, this.spentSoFar, q.price);
      }
      const rec = roomiest(await this.records(chainId, contract, q.receiver));
      if (!rec || rec.deposit - rec.balance < q.price) return null;
      const balance = rec.balance + q.price;
      // A wallet without eth_signTypedData_v4 pays legacy where the server takes it (auto only).
      const schemes = q.scheme === TYPED && this.choice === 'auto' && q.offered.includes(LEGACY) ? [TYPED, LEGACY] : [q.scheme];
      const { signature, scheme } = await signPayment(this.signer, this.message(rec.receiver, rec.openBlock, balance), schemes);
      Object.assign(rec, { balance, signature, scheme, api: q.api ?? rec.api });
      // Saved before it is sent: a store that outlives the process never has this value
      // signed again.
      await this.save(chainId, contract, rec);
      this.spentSoFar += q.price;
      const why = scheme === q.scheme ? q.why : 'the wallet cannot sign EIP-712 typed data; the server takes legacy proofs';
      if (this.lastScheme.scheme !== scheme) this.log('signing balance proofs', { scheme, why });
      this.lastScheme = { scheme, why };
      return { receiver: rec.receiver, openBlock: rec.openBlock, balance, signature, scheme };
    });
  }

  /**
   * Makes room for the price: the channels to a receiver seen for the first time are read
   * from the chain; then the open channel is topped up, or one is opened.
   * @param {Quote} q
   */
  async provide(q) {
    const { chainId, contract } = await this.setup();
    await this.funding(async () => {
      const ch = await this.channelsFor(q.receiver);
      if (!this.scanned.has(q.receiver)) {
        for (const openBlock of await ch.created(this.sender, this.fromBlock)) await this.refresh(q.receiver, openBlock);
        this.scanned.add(q.receiver);
      }
      const recs = await this.records(chainId, contract, q.receiver);
      const room = roomiest(recs);
      if (room && room.deposit - room.balance >= q.price) return; // funded while we waited
      const newest = recs.filter(usable).sort((a, b) => b.openBlock - a.openBlock)[0];
      if (newest) {
        await this.topUp(newest, this.topUpAmount(q.price, q.price - (newest.deposit - newest.balance)));
        return;
      }
      const deposit = q.price * this.openFactor;
      const opened = await ch.open(this.signer.account, deposit);
      this.log('channel opened', { receiver: q.receiver, openBlock: opened.openBlock, deposit });
      await this.state(() => this.save(chainId, contract, {
        receiver: q.receiver, openBlock: opened.openBlock, deposit, balance: 0n, signature: null, scheme: null,
        state: 'open', settleBlock: 0n, closeAsked: false, api: q.api,
      }));
    });
  }

  /**
   * @param {ChannelRecord} rec
   * @param {bigint} amount
   */
  async topUp(rec, amount) {
    const ch = await this.channelsFor(rec.receiver);
    await ch.topUp(this.signer.account, rec.openBlock, amount);
    this.log('channel topped up', { receiver: rec.receiver, openBlock: rec.openBlock, added: amount });
    await this.refresh(rec.receiver, rec.openBlock);
  }

  /**
   * Updates one stored channel from the contract (adding it if the store lacks it).
   * @param {Address} receiver
   * @param {number} openBlock
   * @returns {Promise<ChannelRecord>}
   */
  async refresh(receiver, openBlock) {
    const { chainId, contract } = await this.setup();
    const info = await (await this.channelsFor(receiver)).info(this.sender, openBlock);
    return this.state(async () => {
      const rec = (await this.load(chainId, contract, receiver, openBlock)) ?? {
        receiver, openBlock, deposit: 0n, balance: 0n, signature: null, scheme: null, state: 'open', settleBlock: 0n, closeAsked: false, api: null,
      };
      if (!info) {
        rec.state = 'closed';
      } else {
        rec.deposit = info.deposit;
        rec.state = info.settleBlock > 0n ? 'closing' : 'open';
        rec.settleBlock = info.settleBlock;
      }
      await this.save(chainId, contract, rec);
      return { ...rec };
    });
  }

  /**
   * Sets a stored channel's closeAsked; the channel afterwards, or null when none is stored.
   * @param {Address} receiver
   * @param {number} openBlock
   * @param {boolean} asked
   * @returns {Promise<ChannelRecord | null>}
   */
  async setCloseAsked(receiver, openBlock, asked) {
    const { chainId, contract } = await this.setup();
    return this.state(async () => {
      const rec = await this.load(chainId, contract, receiver, openBlock);
      if (!rec) return null;
      rec.closeAsked = asked;
      await this.save(chainId, contract, rec);
      return rec;
    });
  }

  // ---- The 402 ----

  /**
   * Reads a µRaiden 402 and chooses the scheme to pay it in; null for a 402 without RDN-Price.
   * @param {string} url
   * @param {Response} res
   * @returns {Promise<Quote | null>}
   */
  async readQuote(url, res) {
    const h = res.headers;
    const priceText = h.get('RDN-Price');
    if (priceText === null) return null;
    if (!/^\d{1,78}$/.test(priceText) || BigInt(priceText) <= 0n) throw new Error(`402 with RDN-Price ${JSON.stringify(priceText)}`);
    const price = BigInt(priceText);
    const { chainId, contract } = await this.trust(h.get('RDN-Contract-Address') ?? '');
    const receiver = h.get('RDN-Receiver-Address') ?? '';
    if (!isAddress(receiver, { strict: false })) throw new Error(`402 with RDN-Receiver-Address ${JSON.stringify(receiver)}`);
    if (this.maxPrice !== undefined && price > this.maxPrice) throw new PriceTooHighError(price, this.maxPrice);
    const path = h.get('RDN-Gateway-Path');
    const api = path && path.startsWith('/') ? new URL(url).origin + path.replace(/\/+$/, '') : null;
    const header = h.get('RDN-Proof-Schemes');
    // Only then is the body's eip712_domain needed; the body stays readable for a 402 handed
    // back to the caller.
    const body = header && header.includes(TYPED) ? await peekJSON(res, 64 << 10) : null;
    const offer = readOffer(header, body, chainId, contract);
    const { scheme, why } = chooseScheme(offer, this.choice);
    return { receiver: getAddress(receiver), price, api, scheme, why, offered: offer.schemes };
  }

  /**
   * Checks a 402's contract against the trusted one; with none configured, the first one
   * named is trusted once it proves to be a channel contract, and no other after it.
   * @param {string} named
   */
  async trust(named) {
    if (!isAddress(named, { strict: false })) throw new UntrustedContractError(named, this.trusted ?? '', 'not an address');
    const address = getAddress(named);
    if (this.trusted && !isAddressEqual(address, this.trusted)) throw new UntrustedContractError(address, this.trusted);
    this.trusted = address;
    try {
      return await this.setup();
    } catch (err) {
      if (this.configured) throw err;
      // Not pinned: a contract that failed the check (or a node that did not answer) is
      // looked at again on the next 402.
      this.trusted = null;
      throw new UntrustedContractError(address, '', /** @type {Error} */ (err).message);
    }
  }

  /** The trusted contract, its token and the chain id, checked once (again after a failure). */
  setup() {
    if (!this.ready) {
      const contract = this.trusted;
      if (!contract) return Promise.reject(new Error('the channel contract is unknown: give contract, or pay through the server once'));
      this.ready = Promise.all([checkContract(this.client, contract), getChainId(this.client)]).then(
        ([token, chainId]) => (this.resolved = { contract, token, chainId }),
        (err) => {
          this.ready = null;
          throw err;
        },
      );
    }
    return this.ready;
  }

  /** @param {Address} receiver */
  async channelsFor(receiver) {
    const { contract, token, chainId } = await this.setup();
    let ch = this.byReceiver.get(receiver);
    if (!ch) {
      ch = new Channels(this.client, { contract, token, receiver, chainId, lock: this.tx });
      this.byReceiver.set(receiver, ch);
    }
    return ch;
  }

  /**
   * A copy of req with payment p (when not null) in the RDN-* headers. A proof never follows
   * a redirect: fetch keeps custom headers on every hop, and a proof that reached the
   * redirecting server or its target could be spent there first (redirected follows).
   * @param {Request} req
   * @param {ArrayBuffer | null} body
   * @param {Payment | null} p
   */
  request(req, body, p) {
    const headers = new Headers(req.headers);
    if (!p) return derive(req, { headers, body });
    headers.set('RDN-Contract-Address', /** @type {Address} */ (this.trusted));
    headers.set('RDN-Receiver-Address', p.receiver);
    headers.set('RDN-Sender-Address', this.sender);
    headers.set('RDN-Open-Block', String(p.openBlock));
    headers.set('RDN-Balance', p.balance.toString());
    headers.set('RDN-Balance-Signature', p.signature);
    // Legacy proofs go without the header, as µRaiden's clients send them.
    headers.delete('RDN-Proof-Scheme');
    if (p.scheme !== LEGACY) headers.set('RDN-Proof-Scheme', p.scheme);
    return derive(req, { headers, body, redirect: 'manual' });
  }

  // ---- Signing and the store ----

  /**
   * @param {Address} receiver
   * @param {number} openBlock
   * @param {bigint} balance
   */
  message(receiver, openBlock, balance) {
    if (!this.resolved) throw new Error('message before setup');
    const { contract, chainId } = this.resolved;
    return { receiver, openBlock, balance, contract, chainId };
  }

  /**
   * The channel's last balance and its proof in scheme; a channel with nothing signed gets a
   * proof for 0, one whose last proof is of the other scheme that balance signed again.
   * @param {ChannelRecord} rec
   * @param {Scheme} scheme
   */
  async lastProof(rec, scheme) {
    if (rec.signature && rec.scheme === scheme) return { balance: rec.balance, signature: rec.signature };
    const balance = rec.signature ? rec.balance : 0n;
    return { balance, signature: await this.signer.signBalance(this.message(rec.receiver, rec.openBlock, balance), scheme) };
  }

  /**
   * Signs the close request and asks the server for its closing signature.
   * @param {string} api
   * @param {ChannelRecord} rec
   * @param {bigint} balance
   * @param {Hex} signature
   * @param {Scheme} scheme
   */
  async askClose(api, rec, balance, signature, scheme) {
    const { contract, chainId } = await this.setup();
    return askClosingSignature({
      signer: this.signer, fetch: this.baseFetch, api, sender: this.sender, receiver: rec.receiver, contract, chainId,
      openBlock: rec.openBlock, balance, balanceSignature: signature, scheme,
    });
  }

  /**
   * @param {number} chainId
   * @param {Address} contract
   */
  prefix(chainId, contract) {
    return `uraiden:${chainId}:${contract}:${this.sender}:`.toLowerCase();
  }

  /**
   * @param {number} chainId
   * @param {Address} contract
   * @param {Address} [receiver]
   * @returns {Promise<ChannelRecord[]>}
   */
  async records(chainId, contract, receiver) {
    const prefix = this.prefix(chainId, contract) + (receiver ? `${receiver.toLowerCase()}:` : '');
    const out = [];
    for (const key of await this.store.keys(prefix)) {
      const text = await this.store.get(key);
      if (text) out.push(decode(text));
    }
    return out.sort((a, b) => a.receiver.localeCompare(b.receiver) || a.openBlock - b.openBlock);
  }

  /**
   * @param {number} chainId
   * @param {Address} contract
   * @param {Address} receiver
   * @param {number} openBlock
   */
  async load(chainId, contract, receiver, openBlock) {
    const text = await this.store.get(`${this.prefix(chainId, contract)}${receiver.toLowerCase()}:${openBlock}`);
    return text ? decode(text) : null;
  }

  /**
   * @param {number} chainId
   * @param {Address} contract
   * @param {ChannelRecord} rec
   */
  async save(chainId, contract, rec) {
    await this.store.set(`${this.prefix(chainId, contract)}${rec.receiver.toLowerCase()}:${rec.openBlock}`, encode(rec));
  }
}

/** @param {number} status */
function isRedirect(status) {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * A request like req, with what is given changed.
 * @param {Request} req
 * @param {{ url?: string, method?: string, headers?: HeadersInit, body: ArrayBuffer | null, redirect?: RequestRedirect }} change
 */
function derive(req, { url = req.url, method = req.method, headers = req.headers, body, redirect = req.redirect }) {
  return new Request(url, {
    method, headers, body, redirect, signal: req.signal, credentials: req.credentials, cache: req.cache, mode: req.mode,
    referrerPolicy: req.referrerPolicy, keepalive: req.keepalive,
  });
}

/** @param {ChannelRecord} rec */
function usable(rec) {
  return rec.state === 'open' && !rec.closeAsked;
}

/**
 * The usable channel with the most room, or null.
 * @param {ChannelRecord[]} recs
 */
function roomiest(recs) {
  /** @type {ChannelRecord | null} */
  let best = null;
  for (const rec of recs.filter(usable)) {
    if (!best || rec.deposit - rec.balance > best.deposit - best.balance) best = rec;
  }
  return best;
}

/** @param {ChannelRecord} rec */
function encode(rec) {
  return JSON.stringify({
    ...rec, deposit: rec.deposit.toString(), balance: rec.balance.toString(), settleBlock: rec.settleBlock.toString(),
  });
}

/**
 * @param {string} text
 * @returns {ChannelRecord}
 */
function decode(text) {
  const v = JSON.parse(text);
  return {
    receiver: getAddress(v.receiver), openBlock: Number(v.openBlock), deposit: BigInt(v.deposit), balance: BigInt(v.balance),
    signature: v.signature ?? null, scheme: parseScheme(v.scheme), state: v.state, settleBlock: BigInt(v.settleBlock ?? 0),
    closeAsked: Boolean(v.closeAsked), api: v.api ?? null,
  };
}

/**
 * Reads up to limit bytes of a response's body as JSON, leaving the response readable;
 * null when it is not JSON.
 * @param {Response} res
 * @param {number} limit
 */
async function peekJSON(res, limit) {
  const { bytes } = await readBounded(res.clone().body, limit);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** @param {Response} res */
async function discard(res) {
  await res.body?.cancel().catch(() => {});
}

/**
 * @param {number} ms
 * @param {AbortSignal} [signal]
 */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}
