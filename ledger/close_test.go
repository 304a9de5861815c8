package ledger

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// countingSigner signs a fake closing signature derived from the balance, and counts calls.
type countingSigner struct{ calls atomic.Int64 }

// sign returns a signature that names the balance and the scheme.
func (s *countingSigner) sign(id rdn.ChannelID, balance *big.Int, scheme rdn.Scheme) (rdn.Signature, error) {
	s.calls.Add(1)
	return sig(balance.Int64() + 1000 + 1_000_000*int64(scheme)), nil
}

func TestCloseCooperatively(t *testing.T) {
	dir := t.TempDir()
	l := openDir(t, dir)
	create(t, l, alice, 100, 10)
	pay(t, l, alice, 30, 30)
	var s countingSigner
	ctx := context.Background()

	var mismatch *BalanceMismatchError
	if _, err := l.CloseCooperatively(ctx, alice, big.NewInt(29), rdn.SchemeLegacy, s.sign); !errors.As(err, &mismatch) || mismatch.Balance.Int64() != 30 {
		t.Fatalf("close below the last balance: %v", err)
	}
	if _, err := l.CloseCooperatively(ctx, rdn.ChannelID{Sender: common.HexToAddress("0xdd"), OpenBlock: 1}, big.NewInt(0), rdn.SchemeLegacy, s.sign); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("unknown channel: %v", err)
	}
	got, err := l.CloseCooperatively(ctx, alice, big.NewInt(30), rdn.SchemeLegacy, s.sign)
	if err != nil || got != sig(1030) {
		t.Fatalf("close: %v %v", got, err)
	}
	if r := pay(t, l, alice, 35, 5); r.Outcome != NoChannel {
		t.Errorf("payment after the close: %v", r.Outcome)
	}
	st := l.Stats()
	if st.OpenChannels != 0 || st.ClosingChannels != 1 || st.UniqueSenders != 0 || st.BalanceSum.Int64() != 30 {
		t.Errorf("stats after the close: %+v", st)
	}
	again, err := l.CloseCooperatively(ctx, alice, big.NewInt(30), rdn.SchemeLegacy, s.sign)
	if err != nil || again != got || s.calls.Load() != 1 {
		t.Errorf("asked again: %v %v, %d signatures made", again, err, s.calls.Load())
	}
	if _, err := l.CloseCooperatively(ctx, alice, big.NewInt(31), rdn.SchemeLegacy, s.sign); !errors.As(err, &mismatch) {
		t.Errorf("asked again at another balance: %v", err)
	}

	// Durable: after a reopen the channel is still closing with the same signature.
	l.Close()
	l = openDir(t, dir)
	defer l.Close()
	c, _ := l.Channel(alice)
	if c.State != StateClosing || c.ClosingSignature != got || !c.CloseSigned() {
		t.Errorf("after reopen: state %v signature %v", c.State, c.ClosingSignature)
	}
	if r := pay(t, l, alice, 35, 5); r.Outcome != NoChannel {
		t.Errorf("payment after reopen: %v", r.Outcome)
	}
	// A settled channel cannot be closed again.
	err = l.Apply(ctx, Update{Events: []Event{{Kind: Settled, Channel: alice, Block: 20, Amount: big.NewInt(30)}}, Sync: SyncState{Cursor: 20, Confirmed: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.CloseCooperatively(ctx, alice, big.NewInt(30), rdn.SchemeLegacy, s.sign); !errors.Is(err, ErrSettled) {
		t.Errorf("settled channel: %v", err)
	}
}

// Payments racing a close: every payment either happened before the close (and the close
// is at a balance that includes it) or is refused; the close never signs below a payment.
func TestCloseRacingPayments(t *testing.T) {
	l, _ := openTest(t)
	create(t, l, alice, 10_000, 10)
	var s countingSigner
	var wg sync.WaitGroup
	accepted := make([]bool, 100)
	for i := range accepted {
		wg.Go(func() {
			b := int64(i + 1)
			r, err := l.Pay(context.Background(), Payment{ID: alice, Balance: big.NewInt(b), Signature: sig(b), Price: big.NewInt(1)})
			if err != nil {
				t.Error(err)
			}
			accepted[i] = r.Outcome == Accepted
		})
	}
	var closedAt *big.Int
	wg.Go(func() {
		for {
			c, _ := l.Channel(alice)
			if _, err := l.CloseCooperatively(context.Background(), alice, c.Balance, rdn.SchemeLegacy, s.sign); err == nil {
				closedAt = c.Balance
				return
			}
		}
	})
	wg.Wait()
	highest := int64(0)
	for i, ok := range accepted {
		if ok {
			highest = max(highest, int64(i+1))
		}
	}
	c, _ := l.Channel(alice)
	if closedAt.Int64() != highest || c.Balance.Int64() != highest || c.ClosingSignature != sig(highest+1000) {
		t.Errorf("closed at %s, highest accepted %d, channel balance %s", closedAt, highest, c.Balance)
	}
}

func TestClosingSignatureEncoding(t *testing.T) {
	c := newChannel(alice, big.NewInt(100))
	c.accept(big.NewInt(5), sig(5), rdn.SchemeLegacy, big.NewInt(5))
	if v := c.marshal()[0]; v != encodingVersion {
		t.Errorf("a channel without a closing signature is written as version %d", v)
	}
	c.State, c.ClosingSignature = StateClosing, sig(77)
	data := c.marshal()
	if data[0] != encodingVersionClosing {
		t.Errorf("a closing signature is written as version %d", data[0])
	}
	got, err := unmarshalChannel(alice, data)
	if err != nil || got.ClosingSignature != sig(77) || got.Balance.Int64() != 5 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := unmarshalChannel(alice, data[:len(data)-1]); err == nil {
		t.Error("a truncated closing signature decoded")
	}
}
