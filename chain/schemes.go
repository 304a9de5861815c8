package chain

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/rdn"
)

// eip712Fields is EIP-5267's bit map of the domain fields a contract uses: name, version,
// chainId and verifyingContract (no salt).
const eip712Fields = 0x0f

// ProofSchemes returns the proof schemes the channel contract at contract takes, preferred
// first, as read from its EIP-5267 eip712Domain(): [typed, legacy] when it answers with
// uraiden's domain for chainID and this contract, [legacy] when it has no such function (the
// call reverts or returns nothing: µRaiden 0.2.0's contract). A domain that answers but is not
// ours is an error, not legacy: a server offering legacy proofs only against a contract built
// for typed ones, or typed proofs the contract would refuse, is misconfigured (another chain's
// node, another contract's address), and says how.
func ProofSchemes(ctx context.Context, caller ethereum.ContractCaller, contract common.Address, chainID uint64) ([]rdn.Scheme, error) {
	channels := contracts.NewRaidenMicroTransferChannels()
	out, err := caller.CallContract(ctx, ethereum.CallMsg{To: &contract, Data: channels.PackEip712Domain()}, nil)
	if err != nil {
		if isRevert(err) {
			return []rdn.Scheme{rdn.SchemeLegacy}, nil
		}
		return nil, fmt.Errorf("eip712Domain() of %s: %w", contract, err)
	}
	if len(out) == 0 {
		return []rdn.Scheme{rdn.SchemeLegacy}, nil
	}
	d, err := channels.UnpackEip712Domain(out)
	if err != nil {
		return nil, fmt.Errorf("eip712Domain() of %s answers %d bytes that are not EIP-5267's domain: %w", contract, len(out), err)
	}
	var wrong []string
	if d.Fields[0] != eip712Fields {
		wrong = append(wrong, fmt.Sprintf("fields 0x%02x, want 0x%02x", d.Fields[0], eip712Fields))
	}
	if d.Name != rdn.DomainName {
		wrong = append(wrong, fmt.Sprintf("name %q, want %q", d.Name, rdn.DomainName))
	}
	if d.Version != rdn.DomainVersion {
		wrong = append(wrong, fmt.Sprintf("version %q, want %q", d.Version, rdn.DomainVersion))
	}
	if d.ChainId == nil || d.ChainId.Cmp(new(big.Int).SetUint64(chainID)) != 0 {
		wrong = append(wrong, fmt.Sprintf("chain id %v, want the node's %d", d.ChainId, chainID))
	}
	if d.VerifyingContract != contract {
		wrong = append(wrong, fmt.Sprintf("verifying contract %s, want %s", d.VerifyingContract, contract))
	}
	if len(wrong) > 0 {
		return nil, fmt.Errorf("%w: eip712Domain() of %s answers %s", ErrForeignDomain, contract, strings.Join(wrong, ", "))
	}
	return []rdn.Scheme{rdn.SchemeTyped, rdn.SchemeLegacy}, nil
}

// ErrForeignDomain: the contract's eip712Domain() answers with a domain other than uraiden's
// for this chain and contract, so typed proofs signed for it would not be uraiden's.
var ErrForeignDomain = errors.New("the contract's EIP-712 domain is not uraiden's for this chain and contract")

// isRevert reports whether a call failed in the contract rather than at the node. Nodes say
// "execution reverted" (geth, anvil, with a reason after it when there is one); a contract
// compiled for rules before Byzantium ends an unknown call with an invalid opcode.
func isRevert(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "execution reverted") || strings.Contains(msg, "invalid opcode")
}
