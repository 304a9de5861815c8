// The payer with a wallet (an EIP-1193 provider, as window.ethereum) instead of a key: a
// test wallet that signs with a dev key, computes the legacy eth_signTypedData (v1) hash
// itself, sends transactions, and passes everything else to the dev chain's node. One has
// eth_signTypedData_v4 and pays typed proofs; one lacks it (4200, as wallets without the
// method answer) and falls back to legacy proofs, asked for v4 once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createClient, encodePacked, http, keccak256 } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { sendTransaction } from 'viem/actions';
import { LEGACY, TYPED, createPayer, walletSigner } from '../src/index.js';
import { get, key, onChain, receiver, rpcUrl, serverChannel, skip, tokens } from './env.js';

/**
 * @param {`0x${string}`} privateKey
 * @param {Record<string, number>} lacks methods the wallet answers with this error code
 */
function testWallet(privateKey, lacks = {}) {
  const account = privateKeyToAccount(privateKey);
  const node = createClient({ transport: http(rpcUrl) });
  /** @type {Record<string, number>} */
  const calls = {};
  let id = 0;
  const ethereum = {
    calls,
    /** @param {{ method: string, params?: any[] }} args */
    async request({ method, params = [] }) {
      calls[method] = (calls[method] ?? 0) + 1;
      if (lacks[method]) throw Object.assign(new Error(`${method} is not supported`), { code: lacks[method] });
      switch (method) {
        case 'eth_accounts':
        case 'eth_requestAccounts':
          return [account.address];
        case 'eth_signTypedData_v4':
          return account.signTypedData(typedFromJSON(JSON.parse(params[1])));
        case 'eth_signTypedData':
          return account.sign({ hash: legacyTypedDataHash(params[0]) });
        case 'personal_sign':
          return account.signMessage({ message: { raw: params[0] } });
        case 'eth_sendTransaction': {
          const tx = params[0];
          return sendTransaction(node, {
            account, chain: null, to: tx.to, data: tx.data, value: tx.value ? BigInt(tx.value) : undefined,
            gas: tx.gas ? BigInt(tx.gas) : undefined,
          });
        }
        default: {
          const res = await fetch(rpcUrl, {
            method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
          });
          const body = await res.json();
          if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code, data: body.error.data });
          return body.result;
        }
      }
    },
  };
  return { ethereum, address: account.address };
}

/**
 * The hash of legacy (v1) typed data, as wallets that still have eth_signTypedData compute it:
 * keccak256(keccak256(packed "type name" strings) ‖ keccak256(packed values)).
 * @param {{ type: string, name: string, value: string }[]} fields
 */
function legacyTypedDataHash(fields) {
  const schema = keccak256(encodePacked(fields.map(() => 'string'), fields.map((f) => `${f.type} ${f.name}`)));
  const values = keccak256(encodePacked(fields.map((f) => f.type), fields.map((f) => (f.type.startsWith('uint') ? BigInt(f.value) : f.value))));
  return keccak256(encodePacked(['bytes32', 'bytes32'], [schema, values]));
}

/** EIP-712 data as eth_signTypedData_v4 takes it (numbers as strings), with viem's numbers. */
function typedFromJSON(data) {
  const { EIP712Domain, ...types } = data.types;
  const message = { ...data.message };
  for (const f of types[data.primaryType]) if (f.type.startsWith('uint')) message[f.name] = BigInt(message[f.name]);
  return { domain: { ...data.domain, chainId: Number(data.domain.chainId) }, types, primaryType: data.primaryType, message };
}

for (const [owner, lacks, scheme] of [
  ['wallet eip712', {}, TYPED],
  ['wallet without v4', { eth_signTypedData_v4: 4200 }, LEGACY],
]) {
  describe(owner, { skip }, () => {
    test(`pays ${scheme} proofs and closes cooperatively`, async () => {
      const { ethereum, address } = testWallet(key(owner), lacks);
      const p = createPayer({ signer: walletSigner(ethereum, address), pollingInterval: 100 });
      const [receiverBefore, senderBefore] = await Promise.all([tokens(receiver), tokens(address)]);
      for (const path of ['/echofix/w1', '/echofix/w2']) {
        const got = await get(p, path);
        assert.equal(got.status, 200, `${path}: ${got.body}`);
      }
      assert.equal(p.proofScheme.scheme, scheme, p.proofScheme.why);
      const [ch] = await p.channels();
      assert.equal((await serverChannel(address, ch.openBlock)).proof_scheme, scheme);
      await p.close({ receiver, openBlock: ch.openBlock });
      assert.equal(await onChain(address, ch.openBlock), null);
      const [receiverAfter, senderAfter] = await Promise.all([tokens(receiver), tokens(address)]);
      assert.equal(receiverAfter - receiverBefore, 10n);
      assert.equal(senderBefore - senderAfter, 10n);
      // The wallet without v4 was asked once; then the payer no longer asks.
      assert.equal(ethereum.calls.eth_signTypedData_v4 ?? 0, scheme === TYPED ? 3 : 1, 'eth_signTypedData_v4 calls');
      assert.equal(ethereum.calls.eth_signTypedData ?? 0, scheme === LEGACY ? 2 : 0, 'eth_signTypedData calls');
      assert.equal(ethereum.calls.personal_sign ?? 0, scheme === LEGACY ? 1 : 0, 'personal_sign calls');
    });
  });
}
