// Redirects and the proof: a 402 is paid to the server that answered it, and a request
// carrying a proof follows no redirect (fetch would carry the RDN-* headers to every hop,
// where the redirecting server could spend the proof first).
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { createPayer, keySigner } from '../src/index.js';
import { contract, gateway, key, onChain, receiver, rpcUrl, serverChannel, skip, token } from './env.js';

/**
 * @typedef {object} Seen a request a recorder received
 * @property {string} method
 * @property {string} url
 * @property {http.IncomingHttpHeaders} headers
 * @property {string} body
 */

/**
 * A server on loopback that records every request it receives and answers it with answer.
 * @param {(req: http.IncomingMessage, res: http.ServerResponse) => void} answer
 */
async function recorder(answer) {
  /** @type {Seen[]} */
  const seen = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      answer(req, res);
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => {
      srv.closeAllConnections();
      return new Promise((resolve) => srv.close(() => resolve(undefined)));
    },
  };
}

/** The requests that carried any RDN-* header. @param {Seen[]} seen */
function withProof(seen) {
  return seen.filter((r) => Object.keys(r.headers).some((h) => h.startsWith('rdn-')));
}

// The gateway behind a front that 307-redirects everything to it: the unpaid request follows
// the redirect, and the payment goes to the gateway alone, once; the channel API (and the
// close) is the gateway's, not the front's.
test('a 402 behind a redirect is paid where it came from, never to the redirecting server', { skip }, async () => {
  const front = await recorder((req, res) => {
    res.writeHead(307, { Location: gateway + req.url });
    res.end();
  });
  try {
    const p = createPayer({ signer: keySigner(key('redirect front')), rpcUrl, contract, pollingInterval: 100 });
    // The caller's redirect mode holds for the unpaid request.
    const manual = await p.fetch(`${front.url}/echofix/behind`, { redirect: 'manual' });
    assert.equal(manual.status, 307);
    assert.equal(p.spent, 0n);

    const res = await p.fetch(`${front.url}/echofix/behind`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'behind');
    assert.deepEqual(withProof(front.seen), [], 'the front received a proof');
    assert.deepEqual(front.seen.map((r) => `${r.method} ${r.url}`), ['GET /echofix/behind', 'GET /echofix/behind']);
    const chs = await p.channels();
    assert.equal(chs.length, 1);
    const [ch] = chs;
    assert.equal(ch.api, `${gateway}/api/1`);
    assert.equal(ch.balance, 5n);
    assert.equal(p.spent, 5n);
    assert.equal((await serverChannel(p.sender, ch.openBlock)).charged, '5');

    await p.close({ receiver, openBlock: ch.openBlock });
    assert.equal(await onChain(p.sender, ch.openBlock), null);
    assert.equal(front.seen.length, 2, 'the close went to the front');
  } finally {
    await front.close();
  }
});

// A paid answer that redirects. The gateway's upstream cannot redirect, so a minimal fake
// stands for the server: unpaid, it answers 402 (the real contract and receiver, so the payer
// opens a real channel); paid, a 303 to another origin. The payer follows it itself, as fetch
// would (a POST becomes a GET without its body, Authorization stays behind), without the proof.
test('the redirect of a paid request is followed without the proof', { skip }, async () => {
  const target = await recorder((_, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('landed');
  });
  const fake = await recorder((req, res) => {
    if (req.headers['rdn-balance']) {
      res.writeHead(303, { Location: `${target.url}/landed` });
    } else {
      res.writeHead(402, {
        'RDN-Price': '5', 'RDN-Receiver-Address': receiver, 'RDN-Contract-Address': contract, 'RDN-Token-Address': token,
        'RDN-Gateway-Path': '/api/1', 'RDN-Proof-Schemes': 'legacy',
      });
    }
    res.end();
  });
  try {
    const p = createPayer({ signer: keySigner(key('redirect paid')), rpcUrl, contract, pollingInterval: 100 });
    const res = await p.fetch(`${fake.url}/paid`, {
      method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain', 'X-Mine': 'kept', Authorization: 'Bearer t' },
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'landed');
    assert.equal(p.spent, 5n);
    assert.deepEqual(fake.seen.map((r) => `${r.method} ${r.url} ${r.body} ${r.headers['rdn-balance'] ?? '-'}`),
      ['POST /paid hello -', 'POST /paid hello 5']);
    assert.equal(target.seen.length, 1);
    const [landed] = target.seen;
    assert.deepEqual(withProof(target.seen), [], 'the redirect target received the proof');
    assert.equal(`${landed.method} ${landed.url} ${landed.body}`, 'GET /landed ');
    assert.equal(landed.headers['x-mine'], 'kept');
    assert.equal(landed.headers.authorization, undefined);
    assert.equal(landed.headers['content-type'], undefined);
  } finally {
    await Promise.all([fake.close(), target.close()]);
  }
});
