// The price list (the discovery document) as the library reads it from uraiden's gateway on
// the dev chain (env.js), the rule it names for a request against the price the server's 402
// asks, and what it refuses: documents it cannot read, and requests it cannot tell.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DiscoveryError, RuleMatchError, matchRule, prices } from '../src/index.js';
import { contract, gateway, receiver, skip, token } from './env.js';

test('the price list, read at the well-known address and at the gateway path', { skip }, async () => {
  const doc = await prices(gateway);
  assert.equal(doc.version, 1);
  assert.equal(doc.gatewayPath, '/api/1');
  assert.equal(doc.chainId, 1337);
  assert.equal(doc.receiverAddress, receiver);
  assert.equal(doc.contractAddress, contract);
  assert.deepEqual(doc.token, { address: token, symbol: 'RDNDEV', decimals: 18 });
  assert.deepEqual(doc.proofSchemes, ['eip712', 'legacy']);
  assert.deepEqual(doc.eip712Domain, { name: 'uraiden', version: '1', chainId: 1337, verifyingContract: contract });
  assert.equal(doc.confirmations, 2);
  assert.ok(doc.challengePeriod > 0);
  // The table of authz/testdata/prices.yaml, in order, amounts as bigint.
  assert.deepEqual(doc.defaultPrice, { base: 1n, tokens: '0.000000000000000001' });
  assert.deepEqual(doc.rules, [
    { name: 'echofix', methods: ['GET', 'HEAD'], host: null, path: '/echofix/(?P<param>[^/]+)', price: { base: 5n, tokens: '0.000000000000000005' }, computed: false },
    { name: 'echodyn', methods: [], host: null, path: '/echodyn/(?P<param>[^/]+)', price: null, computed: true },
    { name: 'free', methods: [], host: null, path: '/free(/.*)?', price: { base: 0n, tokens: '0' }, computed: false },
  ]);
  assert.deepEqual(await prices(`${gateway}/api/1/prices`), doc);
});

test('the rule the document names for a request prices it as the server\'s 402 does', { skip }, async () => {
  const doc = await prices(new URL(gateway));
  for (const [method, path, rule, price] of /** @type {const} */ ([
    ['GET', '/echofix/foo', 'echofix', 5n],
    ['HEAD', '/echofix/foo', 'echofix', 5n],
    ['POST', '/echofix/foo', null, 1n], // echofix is for GET and HEAD: the default price
    ['GET', '/echodyn/abcd', 'echodyn', null], // computed: the 402 says
    ['GET', '/free/x', 'free', 0n],
    ['GET', '/free', 'free', 0n],
    ['GET', '/freedom', null, 1n], // patterns match the whole path
    ['GET', '/echofix/a/b?x=1', null, 1n],
  ])) {
    const m = matchRule(doc, { method, url: gateway + path });
    assert.equal(m.rule?.name ?? null, rule, `${method} ${path}`);
    assert.equal(m.price, price, `${method} ${path}`);
    const res = await fetch(gateway + path, { method });
    await res.body?.cancel();
    if (price === 0n) {
      // Let through unpaid (to the demo upstream, which has nothing there).
      assert.ok(res.status !== 402 && !res.headers.has('RDN-Price'), `${method} ${path} is free: ${res.status}`);
    } else {
      assert.equal(res.status, 402, `${method} ${path}`);
      assert.equal(BigInt(res.headers.get('RDN-Price') ?? ''), price ?? 4n, `${method} ${path}: RDN-Price`);
    }
  }
  assert.deepEqual(matchRule(doc, { path: '/echofix/foo' }).groups, { param: 'foo' });
  assert.deepEqual(matchRule(doc, { method: 'get', host: 'any', path: '/free/a?b' }).groups, {});
});

test('a document of another version, or none, is refused', { skip }, async () => {
  /**
   * A fetch of the real document, rewritten.
   * @param {(doc: any) => any} edit
   * @param {string} [type]
   * @returns {typeof fetch}
   */
  const rewriting = (edit, type = 'application/json') => async (input, init) => {
    const doc = await (await fetch(input, init)).json();
    return new Response(JSON.stringify(edit(doc)), { headers: { 'Content-Type': type } });
  };
  for (const [edit, why, type] of /** @type {[(doc: any) => any, RegExp, string?][]} */ ([
    [(d) => ({ ...d, version: 2 }), /format is version 2; this client reads version 1/],
    [(d) => ({ ...d, version: undefined }), /no version/],
    [(d) => ({ ...d, version: '1' }), /version "1" is not a format version/],
    [(d) => [d], /the document is not a JSON object/],
    [(d) => d, /answered "text\/html", not a JSON discovery document/, 'text/html'],
    [(d) => ({ ...d, default_price: { base: 1 } }), /default_price: an amount is a decimal string/],
    [(d) => ({ ...d, default_price: { base: (1n << 192n).toString() } }), /2\^192-1/],
    [(d) => ({ ...d, rules: [{ ...d.rules[1], price: { base: '5' } }] }), /rule 1 "echodyn": a price must be given exactly when it is not computed/],
    [(d) => ({ ...d, receiver_address: '0x12' }), /receiver_address is not a 0x-prefixed hex address/],
    [(d) => ({ ...d, proof_schemes: [] }), /proof_schemes names no scheme/],
  ])) {
    await assert.rejects(prices(gateway, { fetch: rewriting(edit, type) }),
      (err) => err instanceof DiscoveryError && why.test(err.message) && err.url === `${gateway}/.well-known/uraiden`, `${why}`);
  }
  await assert.rejects(prices(gateway, { fetch: rewriting((d) => ({ ...d, version: 2 })) }), (err) => err instanceof DiscoveryError && err.version === 2);
  // Fields a version gains are ignored.
  const more = await prices(gateway, { fetch: rewriting((d) => ({ ...d, future: true, rules: d.rules.map((/** @type {object} */ r) => ({ ...r, future: 1 })) })) });
  assert.deepEqual(more, await prices(gateway));
  // A paid path is no document, and neither is more than 4 MiB.
  await assert.rejects(prices(`${gateway}/echofix/foo`), (err) => err instanceof DiscoveryError && /answered 402 Payment Required, not a discovery document/.test(err.message));
  const huge = async () => new Response(`{"version": 1, "pad": "${'x'.repeat(4 << 20)}"}`, { headers: { 'Content-Type': 'application/json' } });
  await assert.rejects(prices(gateway, { fetch: huge }), (err) => err instanceof DiscoveryError && /more than 4194304 bytes/.test(err.message));
});

test('a URL that is not http(s), or answers nothing, is refused', async () => {
  let sent = 0;
  const counting = /** @type {typeof fetch} */ (async () => {
    sent++;
    return new Response('{}');
  });
  for (const url of ['ftp://example.com/', 'not a url', '/api/1/prices', 'http://']) {
    await assert.rejects(prices(url, { fetch: counting }), (err) => err instanceof DiscoveryError && /not an http\(s\) URL/.test(err.message), url);
  }
  assert.equal(sent, 0);
  // Nothing listens on port 1 of loopback: the cause comes with it.
  await assert.rejects(prices('http://127.0.0.1:1'), (err) => err instanceof DiscoveryError && err.url === 'http://127.0.0.1:1/.well-known/uraiden' && err.cause !== undefined);
});

test('what the document cannot tell is refused, not guessed', () => {
  /** @param {object[]} rules */
  const doc = (rules) => /** @type {import('../src/prices.js').PriceList} */ (/** @type {unknown} */ ({ defaultPrice: { base: 1n, tokens: null }, rules }));
  const rule = (/** @type {object} */ r) => ({ name: 'r', methods: [], host: null, price: { base: 7n, tokens: null }, computed: false, ...r });
  const table = doc([rule({ name: 'echofix', path: '/echofix/(?P<param>[^/]+)' })]);
  // Paths the server resolves before it prices them: the document cannot say.
  for (const [path, why] of [
    ['//echofix/foo', /empty segment/], ['/x/../echofix/foo', /dot segment/], ['/echofix/./foo', /dot segment/],
    ['/echofix/%66oo', /%66/], ['/echofix%2Ffoo', /%2F/], ['/echofix/a%5Cb', /%5C/], ['/echofix/%252F', /%25/],
    ['/echofix/a;b', /";"/], ['/echofix/a b', /" "/], ['/echofix/é', /"é"/], ['echofix/foo', /does not start with \//], ['/a%2', /two hex digits/],
  ]) {
    assert.throws(() => matchRule(table, { path: /** @type {string} */ (path) }),
      (err) => err instanceof RuleMatchError && err.path === path && /** @type {RegExp} */ (why).test(err.message), `${path}`);
  }
  // Escapes of what the canonical form escapes are canonical, in upper case.
  assert.deepEqual(matchRule(table, { path: '/echofix/a%20%c3%a9' }).groups, { param: 'a%20%C3%A9' });
  // A pattern JavaScript cannot match as Go does is refused when the answer depends on it.
  const odd = doc([rule({ name: 'posted', methods: ['POST'], path: '/(?P<1st>.*)' }), rule({ name: 'later', path: '/.*' })]);
  assert.equal(matchRule(odd, { path: '/later' }).rule?.name, 'later'); // not a POST: its pattern is not needed
  assert.throws(() => matchRule(odd, { method: 'POST', path: '/later' }),
    (err) => err instanceof RuleMatchError && err.rule === 'posted' && err.pattern === '/(?P<1st>.*)' && /starts with a digit/.test(err.message));
  // A rule for some hosts needs the host.
  const hosted = doc([rule({ name: 'api', host: 'api\\.example\\.com(:443)?', path: '/.*' })]);
  assert.equal(matchRule(hosted, { url: 'https://api.example.com/x' }).rule?.name, 'api');
  assert.equal(matchRule(hosted, { host: 'api.example.com:8443', path: '/x' }).rule, null);
  assert.throws(() => matchRule(hosted, { path: '/x' }), (err) => err instanceof RuleMatchError && err.rule === 'api' && /names no host/.test(err.message));
});
