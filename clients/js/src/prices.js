// The discovery document (docs/discovery.md): what a server sells and how to pay it, read
// before the first request as the Go client's client.Prices reads it, and the rule in it that
// prices a request. The document says what to expect; a request's 402 is the authority on
// its price.
import { getAddress } from 'viem';
import { readBounded } from './body.js';
import { DiscoveryError, RuleMatchError } from './errors.js';
import { re2ToRegExp } from './re2.js';

/** @typedef {import('viem').Address} Address */

/** The format version this library reads (the document's version). */
export const DISCOVERY_VERSION = 1;

/** Where a server that knows only a host serves the document (RFC 8615). */
const wellKnownPath = '/.well-known/uraiden';

// A table of a thousand rules takes a few hundred KiB; more is no uraiden document.
const maxBytes = 4 << 20;
const maxAmount = (1n << 192n) - 1n;

/**
 * A price: base units, and whole tokens when the token's decimals are known.
 * @typedef {object} Price
 * @property {bigint} base in token base units
 * @property {string | null} tokens the same in whole tokens, an exact decimal ("0.005")
 */

/**
 * A rule of the price table.
 * @typedef {object} PriceRule
 * @property {string} name
 * @property {string[]} methods the methods it prices, upper-case; empty: any
 * @property {string | null} host the RE2 pattern the whole Host must match; null: any host
 * @property {string} path the RE2 pattern the whole path (canonical, without query) must match
 * @property {Price | null} price null when computed
 * @property {boolean} computed the price is computed per request: the 402 states it
 */

/**
 * The discovery document, its fields in camelCase, amounts as bigint, addresses checksummed.
 * @typedef {object} PriceList
 * @property {number} version
 * @property {string} gatewayPath the channel API (RDN-Gateway-Path)
 * @property {number} chainId
 * @property {Address} receiverAddress
 * @property {Address} contractAddress
 * @property {{ address: Address, symbol: string | null, decimals: number | null }} token
 * @property {string[]} proofSchemes preferred first
 * @property {{ name: string, version: string, chainId: number, verifyingContract: Address } | null} eip712Domain
 *   present when eip712 is offered
 * @property {number} confirmations
 * @property {number} challengePeriod in blocks
 * @property {Price} defaultPrice what no rule matches costs
 * @property {PriceRule[]} rules in the order they are tried
 */

/**
 * Reads a server's discovery document: the price table's rules in the order they are tried,
 * the default price, and how to pay.
 * @param {string | URL} url the document's address (<gateway path>/prices) or a server's base
 *   URL without a path, where it is read from /.well-known/uraiden
 * @param {{ fetch?: typeof fetch, signal?: AbortSignal }} [options] fetch sends the request
 *   (globalThis.fetch)
 * @returns {Promise<PriceList>}
 * @throws {DiscoveryError} not an http(s) URL, unreachable, or no discovery document of this version
 */
export async function prices(url, options = {}) {
  /** @type {URL} */
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new DiscoveryError(String(url), 'not an http(s) URL');
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.host) throw new DiscoveryError(String(url), 'not an http(s) URL');
  if (u.pathname === '/') u.pathname = wellKnownPath;
  const where = u.href;
  const send = options.fetch ?? globalThis.fetch.bind(globalThis);
  /** @type {Response} */
  let res;
  try {
    res = await send(where, { headers: { Accept: 'application/json' }, signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new DiscoveryError(where, /** @type {Error} */ (err).message, { cause: err });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new DiscoveryError(where, `answered ${res.status} ${res.statusText}, not a discovery document`);
  }
  const type = res.headers.get('Content-Type') ?? '';
  if (type.split(';')[0].trim().toLowerCase() !== 'application/json') {
    await res.body?.cancel();
    throw new DiscoveryError(where, `answered ${JSON.stringify(type)}, not a JSON discovery document`);
  }
  let data;
  try {
    data = JSON.parse(await readText(res, where));
  } catch (err) {
    if (err instanceof DiscoveryError || options.signal?.aborted) throw err;
    throw new DiscoveryError(where, `not a discovery document: ${/** @type {Error} */ (err).message}`, { cause: err });
  }
  return readDocument(data, where);
}

/**
 * The body, refused past maxBytes without reading the rest.
 * @param {Response} res
 * @param {string} where
 */
async function readText(res, where) {
  const { bytes, complete } = await readBounded(res.body, maxBytes);
  if (!complete) throw new DiscoveryError(where, `answered more than ${maxBytes} bytes`);
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/**
 * The document of this version, typed. Fields it does not know are ignored: a version may
 * gain fields.
 * @param {unknown} data
 * @param {string} where
 * @returns {PriceList}
 */
function readDocument(data, where) {
  /** @param {string} reason @returns {never} */
  const fail = (reason) => {
    throw new DiscoveryError(where, reason);
  };
  const doc = object(data, 'the document', fail);
  if (!('version' in doc)) fail('not a discovery document: no version');
  const { version } = doc;
  if (!Number.isSafeInteger(version)) fail(`not a discovery document: version ${JSON.stringify(version)} is not a format version`);
  if (version !== DISCOVERY_VERSION) {
    throw new DiscoveryError(where, `the document's format is version ${version}; this client reads version ${DISCOVERY_VERSION}`, { version });
  }
  const token = object(doc.token, 'token', fail);
  const rules = Array.isArray(doc.rules) ? doc.rules : fail('rules is not a list');
  const schemes = Array.isArray(doc.proof_schemes) ? doc.proof_schemes : fail('proof_schemes is not a list');
  if (schemes.length === 0 || !schemes.every((s) => typeof s === 'string')) fail('proof_schemes names no scheme');
  const domain = doc.eip712_domain === undefined ? null : object(doc.eip712_domain, 'eip712_domain', fail);
  const gatewayPath = string(doc.gateway_path, 'gateway_path', fail);
  if (!gatewayPath.startsWith('/')) fail(`gateway_path ${JSON.stringify(gatewayPath)} is not a path`);
  return {
    version,
    gatewayPath,
    chainId: integer(doc.chain_id, 'chain_id', fail, 1),
    receiverAddress: address(doc.receiver_address, 'receiver_address', fail),
    contractAddress: address(doc.contract_address, 'contract_address', fail),
    token: {
      address: address(token.address, 'token.address', fail),
      symbol: token.symbol === undefined ? null : string(token.symbol, 'token.symbol', fail),
      decimals: token.decimals === undefined ? null : integer(token.decimals, 'token.decimals', fail, 0, 255),
    },
    proofSchemes: /** @type {string[]} */ (schemes),
    eip712Domain: domain && {
      name: string(domain.name, 'eip712_domain.name', fail),
      version: string(domain.version, 'eip712_domain.version', fail),
      chainId: integer(domain.chainId, 'eip712_domain.chainId', fail, 1),
      verifyingContract: address(domain.verifyingContract, 'eip712_domain.verifyingContract', fail),
    },
    confirmations: integer(doc.confirmations, 'confirmations', fail, 0),
    challengePeriod: integer(doc.challenge_period, 'challenge_period', fail, 0),
    defaultPrice: price(doc.default_price, 'default_price', fail),
    rules: rules.map((r, i) => {
      const rule = object(r, `rule ${i + 1}`, fail);
      const name = string(rule.name, `rule ${i + 1}: name`, fail);
      const what = `rule ${i + 1} ${JSON.stringify(name)}`;
      const computed = typeof rule.computed === 'boolean' ? rule.computed : fail(`${what}: computed is not a boolean`);
      if (computed === (rule.price !== undefined)) fail(`${what}: a price must be given exactly when it is not computed`);
      const methods = Array.isArray(rule.methods) ? rule.methods : fail(`${what}: methods is not a list`);
      return {
        name,
        methods: methods.map((m) => string(m, `${what}: methods`, fail)),
        host: rule.host === undefined ? null : string(rule.host, `${what}: host`, fail),
        path: string(rule.path, `${what}: path`, fail),
        price: computed ? null : price(rule.price, `${what}: price`, fail),
        computed,
      };
    }),
  };
}

/**
 * @param {unknown} v @param {string} what @param {(reason: string) => never} fail
 * @returns {Record<string, unknown>}
 */
function object(v, what, fail) {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} is not a JSON object`);
  return /** @type {Record<string, unknown>} */ (v);
}

/** @param {unknown} v @param {string} what @param {(reason: string) => never} fail @returns {string} */
function string(v, what, fail) {
  return typeof v === 'string' && v !== '' ? v : fail(`${what} is not a non-empty string`);
}

/**
 * @param {unknown} v @param {string} what @param {(reason: string) => never} fail
 * @param {number} min @param {number} [max]
 * @returns {number}
 */
function integer(v, what, fail, min, max = Number.MAX_SAFE_INTEGER) {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(`${what} is not an integer in ${min} … ${max}`);
  return /** @type {number} */ (v);
}

/** @param {unknown} v @param {string} what @param {(reason: string) => never} fail @returns {Address} */
function address(v, what, fail) {
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(v)) fail(`${what} is not a 0x-prefixed hex address`);
  return getAddress(/** @type {string} */ (v));
}

/** @param {unknown} v @param {string} what @param {(reason: string) => never} fail @returns {Price} */
function price(v, what, fail) {
  const p = object(v, what, fail);
  const base = p.base;
  if (typeof base !== 'string' || !/^(0|[1-9][0-9]*)$/.test(base) || BigInt(base) > maxAmount) {
    fail(`${what}: an amount is a decimal string of a whole number in 0 … 2^192-1, got ${JSON.stringify(base)}`);
  }
  return { base: BigInt(/** @type {string} */ (base)), tokens: p.tokens === undefined ? null : string(p.tokens, `${what}: tokens`, fail) };
}

/**
 * The rule that prices a request, found as the server finds it.
 * @typedef {object} RuleMatch
 * @property {PriceRule | null} rule null: no rule matches, the default price applies
 * @property {bigint | null} price in base units; null when the rule's price is computed
 * @property {Record<string, string>} groups the named groups of its path and host patterns
 *   (the variables a computed price reads), "" for one that took no part
 */

/** @type {WeakMap<PriceRule, { path?: RegExp, host?: RegExp }>} */
const compiled = new WeakMap();

/**
 * Finds the rule of the document that prices a request as the server tries them: in order,
 * the first whose methods (any case), host pattern (the whole Host, port included when sent)
 * and path pattern (the whole path, without the query string) match; none: the default price.
 * The path must be in the server's canonical form (docs/serving.md, Paths), which it is not
 * resolved to here: one the server would resolve first (a dot segment, "//", an escape of a
 * character that needs none, a raw character it escapes, %2F, %5C, %25) is refused. Routes
 * priced in the proxy and tables reloaded since the document was read are not seen: the
 * request's 402 is the authority.
 * @param {PriceList} doc from prices()
 * @param {{ method?: string, url?: string | URL, host?: string, path?: string }} request a url
 *   (its host and path, as fetch sends them), or a path and host; method GET by default
 * @returns {RuleMatch}
 * @throws {RuleMatchError} the document cannot tell: a pattern JavaScript cannot match as Go
 *   does, a path not in canonical form, or a rule for some hosts and no host given
 */
export function matchRule(doc, request) {
  const method = (request.method ?? 'GET').toUpperCase();
  let { host, path } = request;
  if (request.url !== undefined) {
    const u = new URL(request.url);
    host ??= u.host;
    path ??= u.pathname;
  }
  if (path === undefined) throw new TypeError('matchRule: a url or a path is required');
  const q = path.indexOf('?');
  if (q >= 0) path = path.slice(0, q);
  path = canonical(path);
  for (const rule of doc.rules) {
    if (rule.methods.length > 0 && !rule.methods.some((m) => m.toUpperCase() === method)) continue;
    let re = compiled.get(rule);
    if (!re) compiled.set(rule, (re = {}));
    re.path ??= compile(rule, rule.path);
    const onPath = re.path.exec(path);
    if (!onPath) continue;
    let onHost = null;
    if (rule.host !== null) {
      if (host === undefined) throw new RuleMatchError('it is for some hosts only, and the request names no host', { rule: rule.name, pattern: rule.host });
      re.host ??= compile(rule, rule.host);
      onHost = re.host.exec(host);
      if (!onHost) continue;
    }
    /** @type {Record<string, string>} */
    const groups = {};
    for (const m of [onHost, onPath]) for (const [k, v] of Object.entries(m?.groups ?? {})) groups[k] = v ?? '';
    return { rule, price: rule.price?.base ?? null, groups };
  }
  return { rule: null, price: doc.defaultPrice.base, groups: {} };
}

/** @param {PriceRule} rule @param {string} pattern */
function compile(rule, pattern) {
  try {
    return re2ToRegExp(pattern);
  } catch (err) {
    if (!(err instanceof RuleMatchError)) throw err;
    throw new RuleMatchError(err.reason, { rule: rule.name, pattern });
  }
}

// The bytes the canonical form writes as they are: RFC 3986 pchar but ';', and '/'.
const plain = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]$/;

/**
 * The path if it is its own canonical form (pricing.CanonicalPath), with the hex of its
 * escapes in upper case; a RuleMatchError if the server would resolve it to another path, or
 * read it more than one way.
 * @param {string} path
 */
function canonical(path) {
  /** @param {string} reason @returns {never} */
  const refuse = (reason) => {
    throw new RuleMatchError(`${reason}: the server resolves it before pricing it (docs/serving.md, Paths), which is not done here`, { path });
  };
  if (!path.startsWith('/')) refuse('it does not start with /');
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '%') {
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) refuse('a % not followed by two hex digits');
      const b = parseInt(hex, 16);
      if (b < 0x20 || b === 0x7f || b === 0x25 || b === 0x2f || b === 0x5c || plain.test(String.fromCharCode(b))) {
        refuse(`it holds %${hex}`);
      }
      out += `%${hex.toUpperCase()}`;
      i += 2;
      continue;
    }
    if (!plain.test(c)) refuse(`it holds ${JSON.stringify(c)}, which the server escapes`);
    if (c === '/') {
      const rest = path.slice(i + 1);
      if (rest.startsWith('/')) refuse('it holds an empty segment');
      if (/^\.\.?(\/|$)/.test(rest)) refuse('it holds a dot segment');
    }
    out += c;
  }
  return out;
}
