// The library's messages and signatures against the known-answer values of
// docs/protocol.md §6, and its choice of scheme against the Go client's (client/scheme_test.go).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  LEGACY, TYPED, ProofSchemeError, balanceProofHash, chooseScheme, closeRequestText, closedBy, keySigner, offeredSchemes,
  readOffer, signedBy,
} from '../src/index.js';

const mainnet = {
  receiver: '0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd', contract: '0x1440317CB15499083dEE3dDf49C2bD51D0d92e33',
  openBlock: 315123, balance: 8n,
};

test('legacy balance proof hash (§6)', () => {
  assert.equal(balanceProofHash({ ...mainnet, chainId: 1 }), '0x7ee49422612d99d4ca0d50079d5295912aad07cc1c7246b66f49b7b222e78015');
});

test('legacy close request (§6)', async () => {
  const signer = keySigner(`0x${'a0'.repeat(32)}`);
  assert.equal(signer.address, '0x8Bf640A099fE945DA46F354d3B49c48a125F48B6');
  const request = { ...mainnet, chainId: 1, sender: signer.address, expires: 1767225600 };
  assert.equal(closeRequestText(request), [
    'uraiden cooperative close request',
    'receiver: 0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd',
    'contract: 0x1440317CB15499083dEE3dDf49C2bD51D0d92e33',
    'chain id: 1',
    'sender: 0x8Bf640A099fE945DA46F354d3B49c48a125F48B6',
    'open block: 315123',
    'balance: 8',
    'expires: 1767225600',
  ].join('\n'));
  assert.equal(await signer.signCloseRequest(request, LEGACY),
    '0x683f58eff6c80f011d7f750c22056850e069c77931e5b13f981ca3f92782ef241ccf9f8c02e75a1c929adf7e9043213726493666b9be37938dd4d02b2cecdb5e1b');
});

test('legacy balance proof signed by a key recovers to it, in its scheme only', async () => {
  const signer = keySigner(`0x${'a0'.repeat(32)}`);
  const proof = { ...mainnet, chainId: 1 };
  const sig = await signer.signBalance(proof, LEGACY);
  assert.equal(await signedBy(signer.address, proof, sig, LEGACY), true);
  assert.equal(await signedBy(signer.address, { ...proof, balance: 9n }, sig, LEGACY), false);
  assert.equal(await signedBy(signer.address, proof, sig, TYPED), false);
  assert.equal(await signedBy(signer.address, proof, '0x1234', LEGACY), false);
});

// The vector set of §6.1: anvil's accounts 0 (sender) and 1 (receiver), contract, open block 42, balance 10¹⁸.
const vectors = {
  contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3', receiver: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
  openBlock: 42, balance: 10n ** 18n, expires: 1767225600,
};
const senderKey = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const typed = {
  31337: {
    proof: '0x5b0a4eeefff96e505d8327cf5710e38507081ba6cf6458eb2db62b9dfc5d0d7108dc34ad435aa180cfb8ecd1e2b36f75e4cc0773570abf970869a96772522f9a1b',
    closing: '0x03df9c9cac1d6c6fdd414afea3dc5c06cb4e06d7be5e5dace97ee459b34f7a7867c8022455f5491975db29ec4d88d9fdd967f42cef572257a5c2e6d80bd1b1161b',
    request: '0xff44ca196dcd326beecfa47bf80fcf5cb373ca22c92f178fb80ba8d4a74ba9092511cf5d22501f592b3926d9474f0c8c3fba04e07ed31209e1b7945862665ce01c',
  },
  1337: {
    proof: '0x08f5e3596b11363db8afb543c459d4b239d6edcf2fdfdd4fbe119da159e9aba107ee506c6c63f58e17632118fe4ab9471e0e30b885840481f253fd6ffa36d02c1c',
    closing: '0x0c62675f8aaddd060f5bff123958e1e564dfb8e3ade80abd2db82b1005069415050519f15d9aa9dcf1d6dc96990e1dcf6b9fc50eb5183c68de1a0c823cbd92a01c',
    request: '0x597927b6cbd592891154b0c422c18bcca01d89b4270226246382a9590753cc2801854bf422876b19525f2296ad267a067a9e57f751b9cc65e6f5a73930766eb21c',
  },
};

for (const [id, want] of Object.entries(typed)) {
  test(`typed proof, closing signature and close request on chain ${id} (§6.1)`, async () => {
    const chainId = Number(id);
    const signer = keySigner(senderKey);
    const proof = { ...vectors, chainId };
    assert.equal(await signer.signBalance(proof, TYPED), want.proof);
    assert.equal(await signedBy(signer.address, proof, want.proof, TYPED), true);
    assert.equal(await signedBy(signer.address, { ...proof, chainId: chainId === 1337 ? 31337 : 1337 }, want.proof, TYPED), false);
    assert.equal(await signer.signCloseRequest({ ...proof, sender: signer.address }, TYPED), want.request);
    const closing = { sender: signer.address, openBlock: 42, balance: vectors.balance, contract: vectors.contract, chainId };
    assert.equal(await closedBy(vectors.receiver, closing, want.closing, TYPED), true);
    assert.equal(await closedBy(vectors.receiver, closing, want.closing, LEGACY), false);
  });
}

test('scheme choice follows the server\'s offer as the Go client does', () => {
  const contract = vectors.contract;
  const domain = (chainId, verifyingContract = contract) => ({ eip712_domain: { name: 'uraiden', version: '1', chainId, verifyingContract } });
  const cases = [
    ['auto, typed offered for our chain and contract', 'eip712, legacy', domain(31337), 'auto', TYPED],
    ['auto, lower-case address', 'eip712, legacy', domain(31337, contract.toLowerCase()), 'auto', TYPED],
    ['auto, a µRaiden 0.2.0 server names no schemes', null, null, 'auto', LEGACY],
    ['auto, legacy only', 'legacy', null, 'auto', LEGACY],
    ['auto, another chain', 'eip712, legacy', domain(1), 'auto', LEGACY],
    ['auto, another contract', 'eip712, legacy', domain(31337, vectors.receiver), 'auto', LEGACY],
    ['auto, no domain in the body', 'eip712, legacy', { price: 5 }, 'auto', LEGACY],
    ['auto, unknown names skipped', 'eip999, legacy', null, 'auto', LEGACY],
    ['auto, typed only but another chain', 'eip712', domain(5), 'auto', 'chain 5'],
    ['auto, nothing known', 'EIP712', domain(31337), 'auto', 'no scheme this client knows'],
    ['forced eip712', 'eip712, legacy', domain(31337), TYPED, TYPED],
    ['forced eip712, legacy-only server', 'legacy', null, TYPED, 'the server offers legacy only'],
    ['forced eip712, µRaiden 0.2.0 server', null, null, TYPED, 'µRaiden 0.2.0'],
    ['forced legacy against typed', 'eip712, legacy', domain(31337), LEGACY, LEGACY],
    ['forced legacy, typed-only server', 'eip712', domain(31337), LEGACY, 'offers eip712 only'],
  ];
  for (const [name, header, body, choice, want] of cases) {
    const offer = readOffer(header, body, 31337, contract);
    if (want === TYPED || want === LEGACY) {
      const got = chooseScheme(offer, choice);
      assert.equal(got.scheme, want, name);
      assert.ok(got.why, name);
    } else {
      assert.throws(() => chooseScheme(offer, choice), (err) => err instanceof ProofSchemeError && err.message.includes(want), name);
    }
  }
  assert.deepEqual(offeredSchemes('eip712, legacy'), [TYPED, LEGACY]);
  assert.deepEqual(offeredSchemes(''), [LEGACY]);
});
