// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

interface IChannelDelegation {
    function createChannelDelegate(address _sender_address, address _receiver_address, uint192 _deposit) external;
    function topUpDelegate(
        address _sender_address,
        address _receiver_address,
        uint32 _open_block_number,
        uint192 _added_deposit
    ) external;
}

interface IApprovable {
    function approve(address _spender, uint256 _value) external returns (bool);
}

/// @title An example trusted contract: opens and tops up channels for senders from its own tokens.
/// @notice Used by the tests of the delegation functions; a real delegate would, for example,
/// sell channel capacity for ETH.
contract TrustedDelegate {
    IChannelDelegation public immutable channels;

    constructor(address _channels, address _token) {
        channels = IChannelDelegation(_channels);
        require(IApprovable(_token).approve(_channels, type(uint256).max), "approve failed");
    }

    function open(address _sender_address, address _receiver_address, uint192 _deposit) external {
        channels.createChannelDelegate(_sender_address, _receiver_address, _deposit);
    }

    function topUp(address _sender_address, address _receiver_address, uint32 _open_block_number, uint192 _added)
        external
    {
        channels.topUpDelegate(_sender_address, _receiver_address, _open_block_number, _added);
    }
}
