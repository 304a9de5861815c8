package chain_test

import (
	"context"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/chain"
	"github.com/uraiden/uraiden/ledger"
	"github.com/uraiden/uraiden/rdn"
)

// contractState is a ChannelInfoReader over channels set by the test: what the contract
// holds, without a chain.
type contractState struct {
	channels map[rdn.ChannelID]ledger.ChainChannel
	err      error
}

func (s contractState) ChannelInfo(_ context.Context, id rdn.ChannelID) (ledger.ChainChannel, error) {
	if s.err != nil {
		return ledger.ChainChannel{ID: id}, s.err
	}
	c, ok := s.channels[id]
	if !ok {
		return ledger.ChainChannel{ID: id}, nil
	}
	c.ID, c.Exists = id, true
	if c.Withdrawn == nil {
		c.Withdrawn = new(big.Int)
	}
	return c, nil
}

// planLedger is an in-memory ledger holding a confirmed channel with a deposit of 1000 and,
// above 0, a payment of that balance, for each balance.
func planLedger(t *testing.T, balances ...int64) (*ledger.Ledger, []rdn.ChannelID) {
	t.Helper()
	l, err := ledger.Open(ledger.Options{InMemory: true, Identity: ledger.Identity{ChainID: 1, Receiver: common.Address{0xee}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ids := make([]rdn.ChannelID, len(balances))
	var events []ledger.Event
	for i := range balances {
		ids[i] = rdn.ChannelID{Sender: common.Address{byte(i + 1)}, OpenBlock: uint32(10 + i)}
		events = append(events, ledger.Event{Kind: ledger.Created, Channel: ids[i], Block: uint64(ids[i].OpenBlock), Amount: big.NewInt(1000)})
	}
	if err := l.Apply(t.Context(), ledger.Update{Events: events, Sync: ledger.SyncState{Cursor: 100, Confirmed: 100}}); err != nil {
		t.Fatal(err)
	}
	for i, b := range balances {
		if b == 0 {
			continue
		}
		r, err := l.Pay(t.Context(), ledger.Payment{ID: ids[i], Balance: big.NewInt(b), Price: big.NewInt(b)})
		if err != nil || r.Outcome != ledger.Accepted {
			t.Fatalf("payment of %d: %v %v", b, r.Outcome, err)
		}
	}
	return l, ids
}

// planned is a plan as text: "todo <i> <expected>" and "skip <i>: <why>", i the channel's
// index, sorted.
func planned(p chain.Plan, ids []rdn.ChannelID) []string {
	index := func(id rdn.ChannelID) int { return slices.Index(ids, id) }
	var out []string
	for _, c := range p.Todo {
		out = append(out, "todo "+string(rune('0'+index(c.Channel.ID)))+" "+c.Expected.String())
	}
	for _, s := range p.Skip {
		out = append(out, "skip "+string(rune('0'+index(s.Channel)))+": "+s.Why)
	}
	slices.Sort(out)
	return out
}

func checkPlan(t *testing.T, p chain.Plan, ids []rdn.ChannelID, want []string) {
	t.Helper()
	if got := planned(p, ids); !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanClose(t *testing.T) {
	l, ids := planLedger(t, 0, 100, 100, 100, 100, 100)
	// 1 has a dispute in flight, 2 a finished one.
	for i, status := range map[int]ledger.DisputeStatus{1: ledger.DisputeSent, 2: ledger.DisputeDone} {
		if err := l.SaveDispute(t.Context(), ledger.Dispute{Channel: ids[i], Balance: "100", Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	onChain := contractState{channels: map[rdn.ChannelID]ledger.ChainChannel{
		ids[0]: {}, ids[1]: {}, ids[2]: {},
		// 3 is gone from the contract.
		ids[4]: {Withdrawn: big.NewInt(30)},
		// More was withdrawn than the proof held: the contract settles at what was withdrawn.
		ids[5]: {Withdrawn: big.NewInt(150), SettleBlock: 500},
	}}
	p, err := chain.PlanClose(t.Context(), l, onChain)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"skip 0: no payment (balance 0)",
		"skip 1: the watchtower's dispute is in flight; 'uraiden serve' completes it",
		"skip 3: not on chain: settled already (the server records it when it runs)",
		"todo 2 100",
		"todo 4 70",
		"todo 5 0",
	}
	checkPlan(t, p, ids, want)
	for _, c := range p.Todo {
		if claim := c.Claim(); claim.Channel != c.Channel.ID || claim.Balance.Cmp(c.Channel.Balance) != 0 || claim.BalanceSignature != c.Channel.Signature {
			t.Errorf("claim of %s: %+v", c.Channel.ID, claim)
		}
	}

	boom := errors.New("node down")
	if _, err := chain.PlanClose(t.Context(), l, contractState{err: boom}); !errors.Is(err, boom) {
		t.Errorf("a failed read of the contract: err = %v", err)
	}
}

func TestPlanWithdraw(t *testing.T) {
	l, ids := planLedger(t, 0, 50, 300, 300, 300, 300)
	onChain := contractState{channels: map[rdn.ChannelID]ledger.ChainChannel{
		ids[0]: {}, ids[1]: {},
		// 2 is gone from the contract.
		ids[3]: {SettleBlock: 900},
		ids[4]: {Withdrawn: big.NewInt(250)},
		ids[5]: {Withdrawn: big.NewInt(100)},
	}}
	p, err := chain.PlanWithdraw(t.Context(), l, onChain, big.NewInt(100))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"skip 0: balance 0 below --min 100",
		"skip 1: balance 50 below --min 100",
		"skip 2: not on chain: settled already (the server records it when it runs)",
		"skip 3: the sender asked to close it (settle block 900): no withdrawal from a closing channel",
		"skip 4: unwithdrawn 50 below --min 100",
		"todo 5 200",
	}
	checkPlan(t, p, ids, want)

	boom := errors.New("node down")
	if _, err := chain.PlanWithdraw(t.Context(), l, contractState{err: boom}, big.NewInt(1)); !errors.Is(err, boom) {
		t.Errorf("a failed read of the contract: err = %v", err)
	}
}
