// What the payer refuses before it signs or deposits anything: a contract other than the
// trusted one, or none at all, a price above maxPrice, a payment beyond maxSpend.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { PriceTooHighError, SpendingCapError, UntrustedContractError, createPayer, keySigner } from '../src/index.js';
import { contract, gateway, get, key, receiver, rpcUrl, skip, token, tokens } from './env.js';

/**
 * A server on loopback that answers every request 402 naming the given contract.
 * @param {string} named
 */
async function fake402(named) {
  const srv = http.createServer((_, res) => {
    res.writeHead(402, {
      'RDN-Price': '5', 'RDN-Receiver-Address': receiver, 'RDN-Contract-Address': named, 'RDN-Token-Address': token,
      'RDN-Gateway-Path': '/api/1', 'RDN-Proof-Schemes': 'legacy',
    });
    res.end('{}');
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(undefined)));
  const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
  return { url: `http://127.0.0.1:${port}/x`, close: () => srv.close() };
}

test('a 402 naming another contract than the trusted one is refused', { skip }, async () => {
  const fake = await fake402('0x00000000000000000000000000000000000000aa');
  try {
    const p = createPayer({ signer: keySigner(key('caps')), rpcUrl, contract });
    const before = await tokens(p.sender);
    await assert.rejects(p.fetch(fake.url), (err) => err instanceof UntrustedContractError && err.want === contract);
    // Without a trusted contract, one without a channel contract's code is refused too.
    const open = createPayer({ signer: keySigner(key('caps')), rpcUrl });
    await assert.rejects(open.fetch(fake.url), (err) => err instanceof UntrustedContractError && /has no code/.test(err.message));
    // Nothing was deposited: no channel opened, no token approved away.
    assert.equal(await tokens(p.sender), before);
  } finally {
    fake.close();
  }
});

test('maxPrice and maxSpend stop payment with their errors', { skip }, async () => {
  const priced = createPayer({ signer: keySigner(key('caps')), rpcUrl, maxPrice: 4n });
  await assert.rejects(priced.fetch(`${gateway}/echofix/x`), (err) => err instanceof PriceTooHighError && err.price === 5n);
  assert.equal(priced.spent, 0n);

  const capped = createPayer({ signer: keySigner(key('caps')), rpcUrl, maxSpend: 12n, pollingInterval: 100 });
  for (let i = 0; i < 2; i++) assert.equal((await get(capped, '/echofix/x')).status, 200);
  await assert.rejects(capped.fetch(`${gateway}/echofix/x`),
    (err) => err instanceof SpendingCapError && err.spent === 10n && err.cap === 12n);
  assert.equal(capped.spent, 10n);
});
