// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Minimal view of the token the channels hold: ERC20 plus nothing else.
interface IERC20Token {
    function transfer(address _to, uint256 _value) external returns (bool);
    function transferFrom(address _from, address _to, uint256 _value) external returns (bool);
}

/// @title Unidirectional off-chain micropayment channels between a sender and a receiver.
/// @notice Interface-compatible with µRaiden 0.2.0: same function names and argument types
/// (hence selectors), same events (hence topics) and the same balance-proof and closing
/// hashes, so existing µRaiden clients work unchanged. Differences, all invisible to a
/// well-behaved client:
///  - signatures must be 65 bytes, v in {0, 1, 27, 28} and s in the lower half of the curve
///    order, so a proof has one (r, s): its malleable twin is refused;
///  - a channel is created with a positive deposit, for a non-zero receiver;
///  - settling pays the receiver at least what it already withdrew, so a sender closing below
///    the withdrawn amount cannot make `settle` revert forever;
///  - a channel cannot settle in the block it was opened in, so a key (sender, receiver, open
///    block) is never reused: old proofs and a stale withdrawn balance can never apply to a
///    new channel;
///  - every failed check reverts with a reason string.
/// Beside the legacy proofs it takes EIP-712 (eth_signTypedData_v4) proofs through functions of
/// their own (`…Typed`), advertised with EIP-5267's `eip712Domain()`: the legacy hash binds
/// the contract address but not the chain, and wallets other than MetaMask only sign v4.
contract RaidenMicroTransferChannels {
    // Amounts are uint192 on the interface but never exceed the deposit limit (1e20 < 2^67),
    // so they are stored as uint72 and the whole channel packs into a single slot:
    // 72 + 32 + 72 + 72 = 248 bits.
    struct Channel {
        uint72 deposit; // > 0 for every existing channel
        uint32 settle_block_number; // 0 while no close was requested
        uint72 closing_balance;
        uint72 withdrawn_balance;
    }

    string public constant version = "0.2.0";
    uint256 public constant channel_deposit_bugbounty_limit = 10 ** 18 * 100;

    uint32 public immutable challenge_period;
    IERC20Token public immutable token;
    address public immutable owner_address;

    mapping(bytes32 => Channel) private channels;
    mapping(address => bool) public trusted_contracts;

    bytes32 private constant BALANCE_PROOF_SCHEMA = keccak256(
        abi.encodePacked(
            "string message_id", "address receiver", "uint32 block_created", "uint192 balance", "address contract"
        )
    );
    bytes32 private constant CLOSING_SCHEMA = keccak256(
        abi.encodePacked(
            "string message_id", "address sender", "uint32 block_created", "uint192 balance", "address contract"
        )
    );
    // EIP-712. The domain binds the chain as well as the contract, so a typed proof is dead on
    // any other chain where a contract sits at this address (same deployer and nonce).
    string private constant DOMAIN_NAME = "uraiden";
    string private constant DOMAIN_VERSION = "1";
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant BALANCE_PROOF_TYPEHASH =
        keccak256("BalanceProof(address receiver,uint32 openBlock,uint192 balance)");
    bytes32 private constant CLOSING_BALANCE_TYPEHASH =
        keccak256("ClosingBalance(address sender,uint32 openBlock,uint192 balance)");
    // The separator hashes five words; caching it saves that on every typed call. It is only
    // valid on the chain it was computed on: after a fork that changes the chain id it is
    // computed afresh, so proofs signed for the old chain stop verifying on the new one.
    uint256 private immutable cached_chain_id;
    bytes32 private immutable cached_domain_separator;

    // Half the order of secp256k1: signatures with a larger s are the malleable twin.
    uint256 private constant SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    event ChannelCreated(address indexed _sender_address, address indexed _receiver_address, uint192 _deposit);
    event ChannelToppedUp(
        address indexed _sender_address,
        address indexed _receiver_address,
        uint32 indexed _open_block_number,
        uint192 _added_deposit
    );
    event ChannelCloseRequested(
        address indexed _sender_address,
        address indexed _receiver_address,
        uint32 indexed _open_block_number,
        uint192 _balance
    );
    event ChannelSettled(
        address indexed _sender_address,
        address indexed _receiver_address,
        uint32 indexed _open_block_number,
        uint192 _balance,
        uint192 _receiver_tokens
    );
    event ChannelWithdraw(
        address indexed _sender_address,
        address indexed _receiver_address,
        uint32 indexed _open_block_number,
        uint192 _withdrawn_balance
    );
    event TrustedContract(address indexed _trusted_contract_address, bool _trusted_status);

    modifier isOwner() {
        require(msg.sender == owner_address, "caller is not the owner");
        _;
    }

    modifier isTrustedContract() {
        require(trusted_contracts[msg.sender], "caller is not a trusted contract");
        _;
    }

    constructor(address _token_address, uint32 _challenge_period, address[] memory _trusted_contracts) {
        require(_token_address.code.length > 0, "token address has no code");
        require(_challenge_period >= 500, "challenge period must be at least 500 blocks");
        token = IERC20Token(_token_address);
        challenge_period = _challenge_period;
        owner_address = msg.sender;
        cached_chain_id = block.chainid;
        cached_domain_separator = buildDomainSeparator();
        addTrustedContractsPrivate(_trusted_contracts);
    }

    // ---- Creating and topping up ----

    /// @notice ERC223 entry point: `token.transfer(this, value, data)` with
    /// data = sender ‖ receiver (40 bytes) creates a channel and
    /// data = sender ‖ receiver ‖ uint32 open block (44 bytes) tops one up.
    /// The payer (`_sender_address`) must be the channel's sender or a trusted contract, as in
    /// µRaiden: nobody else may open channels in a sender's name.
    function tokenFallback(address _sender_address, uint256 _deposit, bytes calldata _data) external {
        require(msg.sender == address(token), "only the token may call tokenFallback");
        require(_deposit <= type(uint192).max, "deposit does not fit uint192");
        uint256 length = _data.length;
        require(length == 40 || length == 44, "data must be 40 or 44 bytes");

        // Read straight from calldata: the length is checked above, and slices would check
        // the bounds again (about 400 gas; this more than pays for the dispatcher comparison
        // the typed functions added in front of tokenFallback).
        address sender;
        address receiver;
        uint32 open_block_number;
        // Division rather than shr keeps the Byzantium reference build compiling; the optimizer
        // turns a division by a power of two into a shift where the EVM has one.
        assembly {
            sender := div(calldataload(_data.offset), 0x1000000000000000000000000)
            receiver := div(calldataload(add(_data.offset, 20)), 0x1000000000000000000000000)
            open_block_number := div(calldataload(add(_data.offset, 40)), 0x100000000000000000000000000000000000000000000000000000000)
        }
        require(_sender_address == sender || trusted_contracts[_sender_address], "payer is not the channel's sender");
        if (length == 40) {
            createChannelPrivate(sender, receiver, uint192(_deposit));
        } else {
            updateInternalBalanceStructs(sender, receiver, open_block_number, uint192(_deposit));
        }
    }

    /// @notice ERC20 path: the sender approves `_deposit` first.
    function createChannel(address _receiver_address, uint192 _deposit) external {
        createChannelPrivate(msg.sender, _receiver_address, _deposit);
        require(token.transferFrom(msg.sender, address(this), _deposit), "token transfer failed");
    }

    /// @notice Lets a trusted contract open a channel on behalf of a sender, paying the deposit.
    function createChannelDelegate(address _sender_address, address _receiver_address, uint192 _deposit)
        external
        isTrustedContract
    {
        createChannelPrivate(_sender_address, _receiver_address, _deposit);
        require(token.transferFrom(msg.sender, address(this), _deposit), "token transfer failed");
    }

    function topUp(address _receiver_address, uint32 _open_block_number, uint192 _added_deposit) external {
        updateInternalBalanceStructs(msg.sender, _receiver_address, _open_block_number, _added_deposit);
        require(token.transferFrom(msg.sender, address(this), _added_deposit), "token transfer failed");
    }

    function topUpDelegate(
        address _sender_address,
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _added_deposit
    ) external isTrustedContract {
        updateInternalBalanceStructs(_sender_address, _receiver_address, _open_block_number, _added_deposit);
        require(token.transferFrom(msg.sender, address(this), _added_deposit), "token transfer failed");
    }

    // ---- Closing ----

    /// @notice Lets the receiver take earned tokens out of an open channel.
    function withdraw(uint32 _open_block_number, uint192 _balance, bytes calldata _balance_msg_sig) external {
        require(_balance > 0, "balance must be positive");
        address sender = extractBalanceProofSignature(msg.sender, _open_block_number, _balance, _balance_msg_sig);
        bytes32 key = getKey(sender, msg.sender, _open_block_number);
        Channel storage channel = channels[key];
        require(channel.deposit > 0, "channel does not exist");
        require(channel.settle_block_number == 0, "channel is closing");
        require(_balance <= channel.deposit, "balance exceeds deposit");
        uint72 withdrawn = channel.withdrawn_balance;
        require(_balance > withdrawn, "balance already withdrawn");

        channel.withdrawn_balance = uint72(_balance);
        uint192 amount = _balance - withdrawn;
        require(token.transfer(msg.sender, amount), "token transfer failed");
        emit ChannelWithdraw(sender, msg.sender, _open_block_number, amount);
    }

    /// @notice `withdraw` with an EIP-712 balance proof.
    // The body repeats withdraw's rather than sharing a private function: the jump into one
    // would cost the legacy withdraw 27 gas more than µRaiden-compatible callers pay today.
    function withdrawTyped(uint32 _open_block_number, uint192 _balance, bytes calldata _balance_msg_sig) external {
        require(_balance > 0, "balance must be positive");
        address sender = extractBalanceProofSignatureTyped(msg.sender, _open_block_number, _balance, _balance_msg_sig);
        bytes32 key = getKey(sender, msg.sender, _open_block_number);
        Channel storage channel = channels[key];
        require(channel.deposit > 0, "channel does not exist");
        require(channel.settle_block_number == 0, "channel is closing");
        require(_balance <= channel.deposit, "balance exceeds deposit");
        uint72 withdrawn = channel.withdrawn_balance;
        require(_balance > withdrawn, "balance already withdrawn");

        channel.withdrawn_balance = uint72(_balance);
        uint192 amount = _balance - withdrawn;
        require(token.transfer(msg.sender, amount), "token transfer failed");
        emit ChannelWithdraw(sender, msg.sender, _open_block_number, amount);
    }

    /// @notice Closes and settles at once with both parties' signatures. Anyone may submit it,
    /// also during a challenge period: that is how a receiver answers a close request that
    /// understates the balance.
    function cooperativeClose(
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _balance,
        bytes calldata _balance_msg_sig,
        bytes calldata _closing_sig
    ) external {
        address sender = extractBalanceProofSignature(_receiver_address, _open_block_number, _balance, _balance_msg_sig);
        address receiver = extractClosingSignature(sender, _open_block_number, _balance, _closing_sig);
        require(receiver == _receiver_address, "closing signature is not the receiver's");
        settleChannel(sender, receiver, _open_block_number, _balance);
    }

    /// @notice `cooperativeClose` with EIP-712 proofs: both signatures must be typed, so one
    /// scheme's signature is never read as the other's.
    function cooperativeCloseTyped(
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _balance,
        bytes calldata _balance_msg_sig,
        bytes calldata _closing_sig
    ) external {
        address sender =
            extractBalanceProofSignatureTyped(_receiver_address, _open_block_number, _balance, _balance_msg_sig);
        address receiver = extractClosingSignatureTyped(sender, _open_block_number, _balance, _closing_sig);
        require(receiver == _receiver_address, "closing signature is not the receiver's");
        settleChannel(sender, receiver, _open_block_number, _balance);
    }

    /// @notice The sender asks to close with `_balance`; the receiver may dispute it until the
    /// challenge period is over.
    function uncooperativeClose(address _receiver_address, uint32 _open_block_number, uint192 _balance) external {
        Channel storage channel = channels[getKey(msg.sender, _receiver_address, _open_block_number)];
        require(channel.deposit > 0, "channel does not exist");
        require(channel.settle_block_number == 0, "close already requested");
        require(_balance <= channel.deposit, "balance exceeds deposit");
        uint256 settle_block_number = block.number + challenge_period;
        require(settle_block_number <= type(uint32).max, "settle block does not fit uint32");

        channel.settle_block_number = uint32(settle_block_number);
        channel.closing_balance = uint72(_balance);
        emit ChannelCloseRequested(msg.sender, _receiver_address, _open_block_number, _balance);
    }

    /// @notice The sender settles after the challenge period of its close request.
    function settle(address _receiver_address, uint32 _open_block_number) external {
        Channel storage channel = channels[getKey(msg.sender, _receiver_address, _open_block_number)];
        uint32 settle_block_number = channel.settle_block_number;
        require(settle_block_number > 0, "no close requested");
        require(block.number > settle_block_number, "challenge period not over");
        settleChannel(msg.sender, _receiver_address, _open_block_number, channel.closing_balance);
    }

    // ---- Views ----

    function getChannelInfo(address _sender_address, address _receiver_address, uint32 _open_block_number)
        external
        view
        returns (bytes32, uint192, uint32, uint192, uint192)
    {
        bytes32 key = getKey(_sender_address, _receiver_address, _open_block_number);
        Channel memory channel = channels[key];
        require(channel.deposit > 0, "channel does not exist");
        return (key, channel.deposit, channel.settle_block_number, channel.closing_balance, channel.withdrawn_balance);
    }

    function extractBalanceProofSignature(
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _balance,
        bytes calldata _balance_msg_sig
    ) public view returns (address) {
        bytes32 values = keccak256(
            abi.encodePacked(
                "Sender balance proof signature", _receiver_address, _open_block_number, _balance, address(this)
            )
        );
        return recoverSigner(keccak256(abi.encodePacked(BALANCE_PROOF_SCHEMA, values)), _balance_msg_sig);
    }

    function extractClosingSignature(
        address _sender_address,
        uint32 _open_block_number,
        uint192 _balance,
        bytes calldata _closing_sig
    ) public view returns (address) {
        bytes32 values = keccak256(
            abi.encodePacked("Receiver closing signature", _sender_address, _open_block_number, _balance, address(this))
        );
        return recoverSigner(keccak256(abi.encodePacked(CLOSING_SCHEMA, values)), _closing_sig);
    }

    /// @notice The sender of the EIP-712 balance proof
    /// BalanceProof(address receiver,uint32 openBlock,uint192 balance) in this contract's domain.
    function extractBalanceProofSignatureTyped(
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _balance,
        bytes calldata _balance_msg_sig
    ) public view returns (address) {
        bytes32 struct_hash =
            keccak256(abi.encode(BALANCE_PROOF_TYPEHASH, _receiver_address, _open_block_number, _balance));
        return recoverSigner(typedDigest(struct_hash), _balance_msg_sig);
    }

    /// @notice The receiver of the EIP-712 closing signature
    /// ClosingBalance(address sender,uint32 openBlock,uint192 balance) in this contract's domain.
    function extractClosingSignatureTyped(
        address _sender_address,
        uint32 _open_block_number,
        uint192 _balance,
        bytes calldata _closing_sig
    ) public view returns (address) {
        bytes32 struct_hash =
            keccak256(abi.encode(CLOSING_BALANCE_TYPEHASH, _sender_address, _open_block_number, _balance));
        return recoverSigner(typedDigest(struct_hash), _closing_sig);
    }

    /// @notice EIP-5267: the EIP-712 domain wallets and clients sign typed proofs in. Fields
    /// 0x0f are name, version, chainId and verifyingContract; no salt, no extensions. A
    /// µRaiden 0.2.0 contract lacks this function, which is how a client tells it takes
    /// legacy proofs only.
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version_, // version() is µRaiden's contract version, "0.2.0"
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", DOMAIN_NAME, DOMAIN_VERSION, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    function getKey(address _sender_address, address _receiver_address, uint32 _open_block_number)
        public
        pure
        returns (bytes32 data)
    {
        return keccak256(abi.encodePacked(_sender_address, _receiver_address, _open_block_number));
    }

    // ---- Trusted contracts ----

    function addTrustedContracts(address[] calldata _trusted_contracts) external isOwner {
        addTrustedContractsPrivate(_trusted_contracts);
    }

    function removeTrustedContracts(address[] calldata _trusted_contracts) external isOwner {
        for (uint256 i = 0; i < _trusted_contracts.length; i++) {
            address trusted = _trusted_contracts[i];
            if (trusted_contracts[trusted]) {
                trusted_contracts[trusted] = false;
                emit TrustedContract(trusted, false);
            }
        }
    }

    // ---- Internals ----

    function addTrustedContractsPrivate(address[] memory _trusted_contracts) private {
        for (uint256 i = 0; i < _trusted_contracts.length; i++) {
            address trusted = _trusted_contracts[i];
            // Only contracts can be delegates; an account without code is skipped, as in µRaiden.
            if (trusted.code.length > 0) {
                trusted_contracts[trusted] = true;
                emit TrustedContract(trusted, true);
            }
        }
    }

    function createChannelPrivate(address _sender_address, address _receiver_address, uint192 _deposit) private {
        require(_receiver_address != address(0), "receiver is the zero address");
        require(_deposit > 0, "deposit must be positive");
        require(_deposit <= channel_deposit_bugbounty_limit, "deposit exceeds the channel limit");
        require(block.number <= type(uint32).max, "block number does not fit uint32");
        uint32 open_block_number = uint32(block.number);
        Channel storage channel = channels[getKey(_sender_address, _receiver_address, open_block_number)];
        require(channel.deposit == 0, "channel already exists");

        channel.deposit = uint72(_deposit);
        emit ChannelCreated(_sender_address, _receiver_address, _deposit);
    }

    function updateInternalBalanceStructs(
        address _sender_address,
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _added_deposit
    ) private {
        require(_added_deposit > 0, "added deposit must be positive");
        Channel storage channel = channels[getKey(_sender_address, _receiver_address, _open_block_number)];
        uint256 deposit = channel.deposit;
        require(deposit > 0, "channel does not exist");
        require(channel.settle_block_number == 0, "channel is closing");
        require(deposit + _added_deposit <= channel_deposit_bugbounty_limit, "deposit exceeds the channel limit");

        channel.deposit = uint72(deposit + _added_deposit);
        emit ChannelToppedUp(_sender_address, _receiver_address, _open_block_number, _added_deposit);
    }

    function settleChannel(
        address _sender_address,
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _balance
    ) private {
        bytes32 key = getKey(_sender_address, _receiver_address, _open_block_number);
        Channel memory channel = channels[key];
        require(channel.deposit > 0, "channel does not exist");
        // Settled in its opening block, the key could be created again in the same block, and
        // every proof of the old channel would be valid for the new one.
        require(block.number > _open_block_number, "channel cannot settle in its opening block");
        require(_balance <= channel.deposit, "balance exceeds deposit");
        // What the receiver withdrew was proven by the sender's own signature: never pay the
        // sender back below it (µRaiden reverted here forever).
        uint192 balance = _balance > channel.withdrawn_balance ? _balance : channel.withdrawn_balance;

        delete channels[key];

        uint192 receiver_tokens = balance - channel.withdrawn_balance;
        uint192 sender_tokens = channel.deposit - balance;
        if (receiver_tokens > 0) {
            require(token.transfer(_receiver_address, receiver_tokens), "token transfer failed");
        }
        if (sender_tokens > 0) {
            require(token.transfer(_sender_address, sender_tokens), "token transfer failed");
        }
        emit ChannelSettled(_sender_address, _receiver_address, _open_block_number, balance, receiver_tokens);
    }

    function buildDomainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH,
                keccak256(bytes(DOMAIN_NAME)),
                keccak256(bytes(DOMAIN_VERSION)),
                block.chainid,
                address(this)
            )
        );
    }

    /// keccak256(0x19 ‖ 0x01 ‖ domain separator ‖ struct hash), as eth_signTypedData_v4 signs.
    function typedDigest(bytes32 _struct_hash) private view returns (bytes32) {
        bytes32 separator = block.chainid == cached_chain_id ? cached_domain_separator : buildDomainSeparator();
        return keccak256(abi.encodePacked(hex"1901", separator, _struct_hash));
    }

    function recoverSigner(bytes32 _message_hash, bytes calldata _sig) private pure returns (address signer) {
        require(_sig.length == 65, "signature must be 65 bytes");
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := calldataload(_sig.offset)
            s := calldataload(add(_sig.offset, 32))
            v := byte(0, calldataload(add(_sig.offset, 64)))
        }
        if (v < 27) {
            v += 27;
        }
        require(v == 27 || v == 28, "signature v must be 0, 1, 27 or 28");
        require(uint256(s) <= SECP256K1_HALF_N, "signature s is not in the lower half order");
        signer = ecrecover(_message_hash, v, r, s);
        require(signer != address(0), "invalid signature");
    }
}
