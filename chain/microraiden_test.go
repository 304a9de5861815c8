package chain_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/contracts"
	"github.com/uraiden/uraiden/contracts/microraiden"
	"github.com/uraiden/uraiden/rdn"
)

// µRaiden's own 0.2.0 contract, as deployed by its users: uraiden recognizes it as a channel
// contract (not its own build), and offers legacy proofs only against it, because its
// eip712Domain() call reverts in the original's dispatcher.
func TestOriginalMicroRaiden(t *testing.T) {
	e, _ := newDevEnv(t, 0)
	ctx := t.Context()
	d, err := microraiden.Deploy(ctx, e.ec, e.receiver, e.token, contracts.MinChallengePeriod)
	if err != nil {
		t.Fatal(err)
	}

	c, err := contracts.VerifyContract(ctx, e.ec, d.Address)
	if err != nil {
		t.Fatalf("VerifyContract refuses µRaiden 0.2.0's contract: %v", err)
	}
	if c.Address != d.Address || c.Token != e.token || c.ChallengePeriod != contracts.MinChallengePeriod || c.Ours {
		t.Errorf("VerifyContract of the original: %+v; want token %s, challenge period %d, not ours", c, e.token, contracts.MinChallengePeriod)
	}

	// The legacy answer must come from the contract refusing the call, as on a real
	// deployment, not from an address without code.
	_, err = e.ec.CallContract(ctx, ethereum.CallMsg{To: &d.Address, Data: channelsABI.PackEip712Domain()}, nil)
	if err == nil || !strings.Contains(err.Error(), "execution reverted") {
		t.Fatalf("eip712Domain() on the original: %v; want a revert", err)
	}
	got, err := chain.ProofSchemes(ctx, e.ec, d.Address, e.chainID.Uint64())
	if err != nil || !slices.Equal(got, []rdn.Scheme{rdn.SchemeLegacy}) {
		t.Errorf("ProofSchemes of the original: %v, %v; want [legacy]", got, err)
	}
}
