// What the node tests pay against: uraiden's gateway on the dev chain, started by the Go
// test beside them (node_test.go), which passes its endpoints and the funded senders' keys
// in URAIDEN_JS_* variables. Without them the tests that need a server are skipped.
import { createPublicClient, getAddress, http, parseAbi } from 'viem';
import { Channels } from '../src/index.js';

const env = process.env;

/** Why the server tests cannot run here, or false when they can. */
export const skip = env.URAIDEN_JS_GATEWAY ? false : 'no server: run these through `go test ./clients/js`';

export const gateway = env.URAIDEN_JS_GATEWAY ?? '';
export const rpcUrl = env.URAIDEN_JS_RPC ?? '';
export const contract = env.URAIDEN_JS_CONTRACT ? getAddress(env.URAIDEN_JS_CONTRACT) : undefined;
export const token = env.URAIDEN_JS_TOKEN ? getAddress(env.URAIDEN_JS_TOKEN) : undefined;
export const receiver = env.URAIDEN_JS_RECEIVER ? getAddress(env.URAIDEN_JS_RECEIVER) : undefined;
const keys = (env.URAIDEN_JS_KEYS ?? '').split(',').filter(Boolean);

// Each test pays from its own sender, named here, so that their channels stay apart.
const owners = [
  'cycle legacy', 'cycle eip712', 'parallel legacy', 'parallel eip712',
  'resync legacy', 'resync eip712', 'wallet eip712', 'wallet without v4', 'refused', 'caps',
  'redirect front', 'redirect paid',
];

/**
 * The key of the sender reserved for a test.
 * @param {string} owner
 * @returns {`0x${string}`}
 */
export function key(owner) {
  const i = owners.indexOf(owner);
  if (i < 0 || !keys[i]) throw new Error(`no sender key for ${owner}: ${keys.length} keys given`);
  return /** @type {`0x${string}`} */ (keys[i]);
}

export const chain = rpcUrl ? createPublicClient({ transport: http(rpcUrl), pollingInterval: 100 }) : null;

const tokenAbi = parseAbi(['function balanceOf(address) view returns (uint256)']);

/** @param {`0x${string}`} account */
export function tokens(account) {
  return chain.readContract({ address: token, abi: tokenAbi, functionName: 'balanceOf', args: [account] });
}

/** The contract's view of a channel to the receiver, null once it is gone (settled). */
export function onChain(sender, openBlock) {
  return new Channels(chain, { contract, token, receiver, chainId: 1337 }).info(sender, openBlock);
}

/** The server's public view of a channel (docs/admin-api.md). */
export async function serverChannel(sender, openBlock) {
  const res = await fetch(`${gateway}/api/1/channels/${sender}/${openBlock}`);
  if (!res.ok) throw new Error(`GET channel ${sender}/${openBlock}: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * Fetches path through the payer and returns the status and body.
 * @param {{ fetch: typeof fetch }} payer
 * @param {string} path
 */
export async function get(payer, path) {
  const res = await payer.fetch(gateway + path);
  return { status: res.status, body: await res.text() };
}

/** The price of a path in the test price table (authz/testdata/prices.yaml). */
export function price(path) {
  if (path.startsWith('/echofix/')) return 5n;
  if (path.startsWith('/echodyn/')) return BigInt(path.length - '/echodyn/'.length);
  throw new Error(`no price for ${path}`);
}
