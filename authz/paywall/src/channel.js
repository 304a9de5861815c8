// The sender's side of a channel, through the person's wallet: reading the token and the
// channel contract, and the transactions that open, top up, close and settle a channel.
import { BaseError, ContractFunctionRevertedError, createClient, custom, defineChain, parseAbi } from 'viem';
// Actions one by one rather than createPublicClient/createWalletClient, which carry every
// action viem has: the bundle is a third smaller.
import { getBlockNumber, getContractEvents, readContract, waitForTransactionReceipt, writeContract } from 'viem/actions';

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
  'event ChannelCreated(address indexed _sender_address, address indexed _receiver_address, uint192 _deposit)',
]);

const tokenAbi = parseAbi([
  'function balanceOf(address) view returns (uint256)',
  'function allowance(address, address) view returns (uint256)',
  'function approve(address, uint256) returns (bool)',
  'function decimals() view returns (uint8)',
  'function symbol() view returns (string)',
]);

// Channels wraps the wallet for one receiver's contract and token.
export class Channels {
  constructor(ethereum, { contract, token, receiver, chainId }) {
    // The chain the server is paid on: viem checks before every transaction that the wallet
    // is still on it, since the person may switch networks at any time.
    this.chain = defineChain({
      id: chainId, name: `chain ${chainId}`,
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [] } },
    });
    this.client = createClient({ transport: custom(ethereum), pollingInterval: 1000 });
    this.contract = contract;
    this.token = token;
    this.receiver = receiver;
  }

  async tokenInfo(account) {
    const read = (functionName, args = []) =>
      readContract(this.client, { address: this.token, abi: tokenAbi, functionName, args });
    const [symbol, decimals, balance] = await Promise.all([
      // A token without these optional ERC20 getters is shown in base units.
      read('symbol').catch(() => 'base units'),
      read('decimals').catch(() => 0),
      read('balanceOf', [account]),
    ]);
    return { symbol, decimals: Number(decimals), balance };
  }

  // info returns the channel's on-chain state, or null when it does not exist (never opened,
  // or settled: the contract forgets settled channels and getChannelInfo reverts).
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

  // find returns the sender's newest channel to the receiver that still exists on chain,
  // looking first at the one this browser remembers, then at the contract's creation events
  // (so a person who cleared the browser, or opened the channel elsewhere, finds it again).
  async find(sender) {
    const remembered = Number(localStorage.getItem(this.storageKey(sender)));
    if (remembered) {
      const ch = await this.info(sender, remembered);
      if (ch) return ch;
    }
    const logs = await getContractEvents(this.client, {
      address: this.contract, abi: channelsAbi, eventName: 'ChannelCreated',
      args: { _sender_address: sender, _receiver_address: this.receiver }, fromBlock: 0n,
    });
    for (const log of logs.reverse()) {
      const ch = await this.info(sender, Number(log.blockNumber));
      if (ch) {
        this.remember(ch);
        return ch;
      }
    }
    return null;
  }

  remember(ch) {
    localStorage.setItem(this.storageKey(ch.sender), String(ch.openBlock));
  }

  storageKey(sender) {
    return `rdn-channel:${this.contract}:${this.receiver}:${sender}`.toLowerCase();
  }

  // open locks deposit in a new channel: an approval of the contract (unless one already
  // covers it), then createChannel. The channel is named by the block it was created in.
  async open(sender, deposit, progress) {
    await this.approve(sender, deposit, progress);
    progress('Confirm the transaction that opens the channel in your wallet.');
    const receipt = await this.send(sender, 'createChannel', [this.receiver, deposit], progress);
    const ch = { sender, openBlock: Number(receipt.blockNumber), deposit, settleBlock: 0n, closingBalance: 0n };
    this.remember(ch);
    return ch;
  }

  async topUp(ch, added, progress) {
    await this.approve(ch.sender, added, progress);
    progress('Confirm the top-up transaction in your wallet.');
    await this.send(ch.sender, 'topUp', [this.receiver, ch.openBlock, added], progress);
  }

  // cooperativeClose settles at once with the receiver's closing signature: the receiver
  // gets balance, the rest of the deposit comes back to the sender. Both signatures are in
  // scheme ('eip712' or 'legacy'), which picks the contract function.
  async cooperativeClose(ch, balance, balanceSig, closingSig, scheme, progress) {
    progress('Confirm the transaction that closes the channel in your wallet.');
    const fn = scheme === 'eip712' ? 'cooperativeCloseTyped' : 'cooperativeClose';
    await this.send(ch.sender, fn, [this.receiver, ch.openBlock, balance, balanceSig, closingSig], progress);
  }

  // uncooperativeClose asks to close without the receiver; the receiver has the challenge
  // period to submit a higher balance it holds a proof for, then settle pays out.
  async uncooperativeClose(ch, balance, progress) {
    progress('Confirm the close request in your wallet.');
    await this.send(ch.sender, 'uncooperativeClose', [this.receiver, ch.openBlock, balance], progress);
  }

  async settle(ch, progress) {
    progress('Confirm the settlement transaction in your wallet.');
    await this.send(ch.sender, 'settle', [this.receiver, ch.openBlock], progress);
  }

  blockNumber() {
    return getBlockNumber(this.client, { cacheTime: 0 });
  }

  async approve(sender, amount, progress) {
    const allowance = await readContract(this.client, {
      address: this.token, abi: tokenAbi, functionName: 'allowance', args: [sender, this.contract],
    });
    if (allowance >= amount) return;
    progress('Confirm in your wallet that the channel contract may take the tokens.');
    const hash = await writeContract(this.client, {
      account: sender, chain: this.chain, address: this.token, abi: tokenAbi, functionName: 'approve',
      args: [this.contract, amount],
    });
    await this.mined(hash, progress);
  }

  async send(sender, functionName, args, progress) {
    const hash = await writeContract(this.client, {
      account: sender, chain: this.chain, address: this.contract, abi: channelsAbi, functionName, args,
    });
    return this.mined(hash, progress);
  }

  async mined(hash, progress) {
    progress(`Waiting for transaction ${hash.slice(0, 10)}… to be mined.`);
    const receipt = await waitForTransactionReceipt(this.client, { hash });
    if (receipt.status !== 'success') throw new Error(`transaction ${hash} failed`);
    return receipt;
  }
}
