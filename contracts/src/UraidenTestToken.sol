// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Receivers of ERC223 transfers.
interface ITokenReceiver {
    function tokenFallback(address _from, uint256 _value, bytes calldata _data) external;
}

/// @title A token for development and test networks: ERC20, ERC223 and an open faucet.
/// @notice `transfer(address,uint256,bytes)` calls `tokenFallback` on a receiving contract, which
/// is how µRaiden clients open and top up channels in one transaction. Anyone may `mint` up to
/// `faucet_limit` per call: never use this token for anything of value.
contract UraidenTestToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    uint256 public totalSupply;
    uint256 public immutable faucet_limit;

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed _from, address indexed _to, uint256 _value);
    event Approval(address indexed _owner, address indexed _spender, uint256 _value);

    constructor(uint256 _initial_supply, string memory _name, uint8 _decimals, string memory _symbol) {
        name = _name;
        symbol = _symbol;
        decimals = _decimals;
        faucet_limit = 10 ** 6 * 10 ** uint256(_decimals);
        mintPrivate(msg.sender, _initial_supply);
    }

    /// @notice Faucet: mints `_value` new tokens to `_to`.
    function mint(address _to, uint256 _value) external {
        require(_value <= faucet_limit, "value exceeds the faucet limit");
        mintPrivate(_to, _value);
    }

    function transfer(address _to, uint256 _value) external returns (bool) {
        transferPrivate(msg.sender, _to, _value);
        return true;
    }

    /// @notice ERC223 transfer: also notifies `_to` when it is a contract, which must accept.
    function transfer(address _to, uint256 _value, bytes calldata _data) external returns (bool) {
        transferPrivate(msg.sender, _to, _value);
        if (_to.code.length > 0) {
            ITokenReceiver(_to).tokenFallback(msg.sender, _value, _data);
        }
        return true;
    }

    function transferFrom(address _from, address _to, uint256 _value) external returns (bool) {
        uint256 allowed = allowance[_from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= _value, "allowance too low");
            allowance[_from][msg.sender] = allowed - _value;
        }
        transferPrivate(_from, _to, _value);
        return true;
    }

    function approve(address _spender, uint256 _value) external returns (bool) {
        allowance[msg.sender][_spender] = _value;
        emit Approval(msg.sender, _spender, _value);
        return true;
    }

    function transferPrivate(address _from, address _to, uint256 _value) private {
        require(_to != address(0), "transfer to the zero address");
        uint256 balance = balanceOf[_from];
        require(balance >= _value, "balance too low");
        unchecked {
            balanceOf[_from] = balance - _value;
        }
        balanceOf[_to] += _value;
        emit Transfer(_from, _to, _value);
    }

    function mintPrivate(address _to, uint256 _value) private {
        require(_to != address(0), "mint to the zero address");
        totalSupply += _value;
        balanceOf[_to] += _value;
        emit Transfer(address(0), _to, _value);
    }
}
