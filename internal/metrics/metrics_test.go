package metrics

import (
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/uraiden/uraiden/ledger"
)

// TestHealthAndDisputes reads the scrape-time series the alerts rest on: the ledger's and
// the chain side's health, the receiver's ETH and the disputes, the late ones counted by the
// chain head, and none of the chain side's on a replica that does not run it.
func TestHealthAndDisputes(t *testing.T) {
	side := true
	src := Sources{
		Stats:     func() ledger.Stats { return ledger.Stats{} },
		Sync:      func() ledger.SyncState { return ledger.SyncState{Cursor: 95} },
		Head:      func() (uint64, bool) { return 100, true },
		LedgerErr: func() error { return errors.New("disk full") },
		ChainErr:  func() error { return nil },
		ChainSide: func() bool { return side },
		ReceiverBalance: func() (*big.Int, *big.Int) {
			return big.NewInt(5e15), big.NewInt(1e16)
		},
		Disputes: func() ([]ledger.Dispute, error) {
			return []ledger.Dispute{
				{Status: ledger.DisputeSent, Deadline: 100},         // late: the head is at its deadline
				{Status: ledger.DisputeWaitingFunds, Deadline: 150}, // not yet
				{Status: ledger.DisputeDone, Deadline: 10},          // over: not late
				{Status: ledger.DisputeFailed, Deadline: 20},
			}, nil
		},
	}
	m := New(src)
	body := scrape(t, m)
	for _, line := range []string{
		"uraiden_ledger_up 0",
		"uraiden_chain_healthy 1",
		"uraiden_chain_side 1",
		"uraiden_chain_sync_lag_blocks 5",
		"uraiden_receiver_eth_balance_wei 5e+15",
		"uraiden_receiver_eth_min_balance_wei 1e+16",
		`uraiden_watchtower_disputes{status="sent"} 1`,
		`uraiden_watchtower_disputes{status="waiting-funds"} 1`,
		`uraiden_watchtower_disputes{status="done"} 1`,
		`uraiden_watchtower_disputes{status="failed"} 1`,
		"uraiden_watchtower_disputes_past_deadline 1",
	} {
		if !strings.Contains(body, "\n"+line+"\n") {
			t.Errorf("no %q in\n%s", line, body)
		}
	}

	side = false
	body = scrape(t, m)
	if !strings.Contains(body, "\nuraiden_chain_side 0\n") {
		t.Error("a replica without the chain side does not say so")
	}
	for _, name := range []string{"uraiden_receiver_eth_balance_wei", "uraiden_watchtower_disputes"} {
		if strings.Contains(body, "\n"+name) {
			t.Errorf("%s exported by a replica that does not run the chain side", name)
		}
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}
