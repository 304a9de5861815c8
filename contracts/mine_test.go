package contracts_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
)

// mineTxs seals a block holding the given transactions, just sent, and returns their
// receipts in order. A simulated backend's pool takes a transaction in two steps: queued
// when SendTransaction returns, executable once its background loop has promoted it. On a
// busy machine a Commit right after sending could seal a block before that, and the receipt
// was then "not found". So mineTxs waits for the real conditions: the pool's pending nonce
// of every sender past its transaction (the miner takes it), then, after the Commit, the
// receipts. A transaction still pending after the Commit gets another block (logged): a test
// that counts on the block it lands in then says so itself.
// waitPooled waits until the simulated pool holds tx: its sender's pending nonce is past it.
func waitPooled(t testing.TB, sim *simulated.Backend, tx *types.Transaction) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		t.Fatalf("sender of %s: %v", tx.Hash(), err)
	}
	for {
		pending, err := sim.Client().PendingNonceAt(ctx, from)
		if err != nil {
			t.Fatalf("pending nonce of %s, waiting for %s: %v", from, tx.Hash(), err)
		}
		if pending > tx.Nonce() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the pool never took %s (nonce %d; pending nonce %d)", tx.Hash(), tx.Nonce(), pending)
		case <-time.After(time.Millisecond):
		}
	}
}

func mineTxs(t testing.TB, sim *simulated.Backend, txs ...*types.Transaction) []*types.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := sim.Client()
	for _, tx := range txs {
		waitPooled(t, sim, tx)
	}
	sim.Commit()
	receipts := make([]*types.Receipt, len(txs))
	for i, tx := range txs {
		for commits := 1; ; {
			r, err := client.TransactionReceipt(ctx, tx.Hash())
			if err == nil {
				receipts[i] = r
				break
			}
			if !errors.Is(err, ethereum.NotFound) {
				t.Fatalf("receipt of %s: %v", tx.Hash(), err)
			}
			if _, pending, err := client.TransactionByHash(ctx, tx.Hash()); err == nil && pending && commits < 3 {
				t.Logf("transaction %s left out of the block; sealing another", tx.Hash())
				sim.Commit()
				commits++
				continue
			}
			select {
			case <-ctx.Done():
				t.Fatalf("receipt of %s: %v", tx.Hash(), err)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return receipts
}
