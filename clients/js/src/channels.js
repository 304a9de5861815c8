// The sender's side of a channel on chain: reading the token and the channel contract, and
// the transactions that open, top up, close and settle a channel.
import { BaseError, ContractFunctionRevertedError, defineChain, parseAbi, toFunctionSelector } from 'viem';
// Actions one by one rather than createPublicClient/createWalletClient, which carry every
// action viem has: the paywall's bundle is a third smaller.
import {
  getBlockNumber, getCode, getContractEvents, readContract, waitForTransactionReceipt, writeContract,
} from 'viem/actions';

/** @typedef {import('viem').Address} Address */
/** @typedef {import('viem').Hex} Hex */
/** @typedef {import('viem').Account | Address} Sender what a transaction is sent from */
/** @typedef {(text: string) => void} Progress told what is being waited for */

// µRaiden's contract interface (protocol.md §1), the part a sender needs.
const channelsAbi = parseAbi([
  'function createChannel(address _receiver_address, uint192 _deposit)',
  'function topUp(address _receiver_address, uint32 _open_block_number, uint192 _added_deposit)',
  'function cooperativeClose(address _receiver_address, uint32 _open_block_number, uint192 _balance, bytes _balance_msg_sig, bytes _closing_sig)',
  // The same with EIP-712 signatures (protocol.md §2.1); uraiden's contract only.
  'function cooperativeCloseTyped(address _receiver_address, uint32 _open_block_number, uint192 _balance, bytes _balance_msg_sig, bytes _closing_sig)',
  'function uncooperativeClose(address _receiver_address, uint32 _open_block_number, uint192 _balance)',
  'function settle(address _receiver_address, uint32 _open_block_number)',
  'function getChannelInfo(address _sender_address, address _receiver_address, uint32 _open_block_number) view returns (bytes32, uint192, uint32, uint192, uint192)',
  'function token() view returns (address)',
  'event ChannelCreated(address indexed _sender_address, address indexed _receiver_address, uint192 _deposit)',
]);

const tokenAbi = parseAbi([
  'function balanceOf(address) view returns (uint256)',
  'function allowance(address, address) view returns (uint256)',
  'function approve(address, uint256) returns (bool)',
  'function decimals() view returns (uint8)',
  'function symbol() view returns (string)',
]);

// closeGas is the gas limit of a close sent while the head is still the channel's opening
// block: estimation runs at the head, where the contract refuses a close.
const closeGas = 200_000n;

/**
 * A channel as the contract holds it.
 * @typedef {object} ChainChannel
 * @property {Address} sender
 * @property {number} openBlock
 * @property {bigint} deposit
 * @property {bigint} settleBlock 0 unless an uncooperative close was requested
 * @property {bigint} closingBalance
 */

/**
 * A lock that runs one function at a time, in call order.
 * @returns {<T>(fn: () => Promise<T>) => Promise<T>}
 */
export function mutex() {
  /** @type {Promise<unknown>} */
  let tail = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn);
    tail = run.catch(() => {});
    return run;
  };
}

/**
 * checkContract checks that address holds a channel contract with the functions this library
 * calls (Solidity's dispatcher compares each selector with PUSH4 <selector>, as the Go
 * client's check does) and returns its token.
 * @param {import('viem').Client} client
 * @param {Address} address
 * @returns {Promise<Address>}
 */
export async function checkContract(client, address) {
  const code = (await getCode(client, { address })) ?? '0x';
  if (code === '0x') throw new Error(`${address} has no code`);
  const missing = channelsAbi
    .filter((item) => item.type === 'function' && item.name !== 'cooperativeCloseTyped')
    .map((item) => toFunctionSelector(/** @type {import('viem').AbiFunction} */ (item)))
    .filter((sel) => !code.includes(`63${sel.slice(2)}`));
  if (missing.length) throw new Error(`${address} is not a µRaiden channel contract: it lacks the functions ${missing.join(', ')}`);
  const token = await readContract(client, { address, abi: channelsAbi, functionName: 'token' });
  if (((await getCode(client, { address: token })) ?? '0x') === '0x') throw new Error(`the token ${token} of ${address} has no code`);
  return token;
}

// Channels speaks to one receiver's channels in a contract, for any sender.
export class Channels {
  /**
   * @param {import('viem').Client} client reads and sends through its transport (a node, or
   *   the wallet's provider)
   * @param {object} opts
   * @param {Address} opts.contract
   * @param {Address} opts.token
   * @param {Address} opts.receiver
   * @param {number} opts.chainId the chain the server is paid on: every transaction names it,
   *   so a wallet switched to another network is refused before anything is sent
   * @param {<T>(fn: () => Promise<T>) => Promise<T>} [opts.lock] serializes transactions with
   *   others of the same sender (their nonces); default: this instance's own
   */
  constructor(client, { contract, token, receiver, chainId, lock }) {
    this.chain = defineChain({
      id: chainId, name: `chain ${chainId}`,
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [] } },
    });
    this.client = client;
    this.contract = contract;
    this.token = token;
    this.receiver = receiver;
    this.lock = lock ?? mutex();
  }

  /**
   * The token's symbol and decimals (base units and 0 for a token without these optional
   * getters) and the account's balance.
   * @param {Address} account
   */
  async tokenInfo(account) {
    const [symbol, decimals, balance] = await Promise.all([
      readContract(this.client, { address: this.token, abi: tokenAbi, functionName: 'symbol' }).catch(() => 'base units'),
      readContract(this.client, { address: this.token, abi: tokenAbi, functionName: 'decimals' }).catch(() => 0),
      readContract(this.client, { address: this.token, abi: tokenAbi, functionName: 'balanceOf', args: [account] }),
    ]);
    return { symbol, decimals: Number(decimals), balance };
  }

  /**
   * The channel's on-chain state, or null when it does not exist (never opened, or settled:
   * the contract forgets settled channels and getChannelInfo reverts).
   * @param {Address} sender
   * @param {number} openBlock
   * @returns {Promise<ChainChannel | null>}
   */
  async info(sender, openBlock) {
    try {
      const [, deposit, settleBlock, closingBalance] = await readContract(this.client, {
        address: this.contract, abi: channelsAbi, functionName: 'getChannelInfo',
        args: [sender, this.receiver, openBlock],
      });
      return { sender, openBlock, deposit, settleBlock: BigInt(settleBlock), closingBalance };
    } catch (err) {
      if (err instanceof BaseError && err.walk((e) => e instanceof ContractFunctionRevertedError)) return null;
      throw err; // the node did not answer: not a reason to think the channel is gone
    }
  }

  /**
   * The open blocks of the sender's channels to the receiver, oldest first, from the
   * contract's ChannelCreated events (a channel's open block is its event's block).
   * @param {Address} sender
   * @param {bigint} [fromBlock]
   * @returns {Promise<number[]>}
   */
  async created(sender, fromBlock = 0n) {
    const logs = await getContractEvents(this.client, {
      address: this.contract, abi: channelsAbi, eventName: 'ChannelCreated',
      args: { _sender_address: sender, _receiver_address: this.receiver }, fromBlock,
    });
    return logs.filter((log) => !log.removed && log.blockNumber !== null).map((log) => Number(log.blockNumber));
  }

  /**
   * The sender's newest channel to the receiver that still exists on chain, looking first at
   * remembered (an open block the caller kept), then at the contract's creation events (so
   * a sender who lost its state, or opened the channel elsewhere, finds it again).
   * @param {Address} sender
   * @param {number} [remembered]
   * @returns {Promise<ChainChannel | null>}
   */
  async find(sender, remembered) {
    if (remembered) {
      const ch = await this.info(sender, remembered);
      if (ch) return ch;
    }
    for (const openBlock of (await this.created(sender)).reverse()) {
      const ch = await this.info(sender, openBlock);
      if (ch) return ch;
    }
    return null;
  }

  /**
   * Locks deposit in a new channel: an approval of the contract (unless one already covers
   * it), then createChannel. The channel is named by the block it was created in.
   * @param {Sender} from
   * @param {bigint} deposit
   * @param {Progress} [progress]
   * @returns {Promise<ChainChannel>}
   */
  async open(from, deposit, progress = () => {}) {
    return this.lock(async () => {
      await this.approve(from, deposit, progress);
      progress('Confirm the transaction that opens the channel in your wallet.');
      const receipt = await this.send(from, 'createChannel', [this.receiver, deposit], progress);
      return { sender: address(from), openBlock: Number(receipt.blockNumber), deposit, settleBlock: 0n, closingBalance: 0n };
    });
  }

  /**
   * Adds to an open channel's deposit (approval, then topUp).
   * @param {Sender} from
   * @param {number} openBlock
   * @param {bigint} added
   * @param {Progress} [progress]
   */
  async topUp(from, openBlock, added, progress = () => {}) {
    await this.lock(async () => {
      await this.approve(from, added, progress);
      progress('Confirm the top-up transaction in your wallet.');
      await this.send(from, 'topUp', [this.receiver, openBlock, added], progress);
    });
  }

  /**
   * Settles at once with the receiver's closing signature: the receiver gets balance, the
   * rest of the deposit comes back to the sender. Both signatures are in scheme ('eip712' or
   * 'legacy'), which picks the contract function.
   * @param {Sender} from
   * @param {number} openBlock
   * @param {bigint} balance
   * @param {Hex} balanceSig
   * @param {Hex} closingSig
   * @param {import('./proof.js').Scheme} scheme
   * @param {Progress} [progress]
   */
  async cooperativeClose(from, openBlock, balance, balanceSig, closingSig, scheme, progress = () => {}) {
    await this.lock(async () => {
      progress('Confirm the transaction that closes the channel in your wallet.');
      const fn = scheme === 'eip712' ? 'cooperativeCloseTyped' : 'cooperativeClose';
      await this.send(from, fn, [this.receiver, openBlock, balance, balanceSig, closingSig], progress, await this.closeGas(openBlock));
    });
  }

  /**
   * Asks to close without the receiver; the receiver has the challenge period to submit a
   * higher balance it holds a proof for, then settle pays out.
   * @param {Sender} from
   * @param {number} openBlock
   * @param {bigint} balance
   * @param {Progress} [progress]
   */
  async uncooperativeClose(from, openBlock, balance, progress = () => {}) {
    await this.lock(async () => {
      progress('Confirm the close request in your wallet.');
      await this.send(from, 'uncooperativeClose', [this.receiver, openBlock, balance], progress, await this.closeGas(openBlock));
    });
  }

  /**
   * @param {Sender} from
   * @param {number} openBlock
   * @param {Progress} [progress]
   */
  async settle(from, openBlock, progress = () => {}) {
    await this.lock(async () => {
      progress('Confirm the settlement transaction in your wallet.');
      await this.send(from, 'settle', [this.receiver, openBlock], progress);
    });
  }

  blockNumber() {
    return getBlockNumber(this.client, { cacheTime: 0 });
  }

  /** @param {number} openBlock */
  async closeGas(openBlock) {
    return (await this.blockNumber()) <= BigInt(openBlock) ? closeGas : undefined;
  }

  /**
   * @param {Sender} from
   * @param {bigint} amount
   * @param {Progress} progress
   */
  async approve(from, amount, progress) {
    const allowance = await readContract(this.client, {
      address: this.token, abi: tokenAbi, functionName: 'allowance', args: [address(from), this.contract],
    });
    if (allowance >= amount) return;
    progress('Confirm in your wallet that the channel contract may take the tokens.');
    const hash = await writeContract(this.client, {
      account: from, chain: this.chain, address: this.token, abi: tokenAbi, functionName: 'approve',
      args: [this.contract, amount],
    });
    await this.mined(hash, progress);
  }

  /**
   * @param {Sender} from
   * @param {any} functionName
   * @param {readonly unknown[]} args
   * @param {Progress} progress
   * @param {bigint} [gas]
   */
  async send(from, functionName, args, progress, gas) {
    const hash = await writeContract(this.client, /** @type {any} */ ({
      account: from, chain: this.chain, address: this.contract, abi: channelsAbi, functionName, args, gas,
    }));
    return this.mined(hash, progress);
  }

  /**
   * @param {Hex} hash
   * @param {Progress} progress
   */
  async mined(hash, progress) {
    progress(`Waiting for transaction ${hash.slice(0, 10)}… to be mined.`);
    const receipt = await waitForTransactionReceipt(this.client, { hash });
    if (receipt.status !== 'success') throw new Error(`transaction ${hash} failed`);
    return receipt;
  }
}

/** @param {Sender} from @returns {Address} */
function address(from) {
  return typeof from === 'string' ? from : from.address;
}
