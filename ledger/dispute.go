package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uraiden/uraiden/rdn"
)

// prefixDispute keys the watchtower's disputes: "dispute/" ‖ channel.
var prefixDispute = []byte("dispute/")

// DisputeStatus is where a dispute transaction is in its life.
type DisputeStatus string

const (
	// DisputeWaitingFunds: the receiver cannot pay the gas; the dispute goes out once funded.
	DisputeWaitingFunds DisputeStatus = "waiting-funds"
	// DisputeSent: a transaction is out and watched.
	DisputeSent DisputeStatus = "sent"
	// DisputeDone: the channel settled at our balance.
	DisputeDone DisputeStatus = "done"
	// DisputeFailed: the transaction reverted, or the channel settled without it.
	DisputeFailed DisputeStatus = "failed"
)

// DisputeTx is one broadcast of the dispute transaction (a fee bump is another, same nonce).
type DisputeTx struct {
	Hash      string    `json:"hash"`
	GasFeeCap string    `json:"gas_fee_cap"`
	GasTipCap string    `json:"gas_tip_cap"`
	Gas       uint64    `json:"gas"`
	SentAt    time.Time `json:"sent_at"`
	SentBlock uint64    `json:"sent_block"`
}

// Dispute is the watchtower's persisted answer to a close request below our balance: a
// cooperativeClose with the sender's highest proof and our closing signature.
type Dispute struct {
	Channel     rdn.ChannelID `json:"channel"`
	Balance     string        `json:"balance"`
	CloseAt     string        `json:"close_balance"` // what the sender asked to close at
	SettleBlock uint64        `json:"settle_block"`
	Deadline    uint64        `json:"deadline"` // mined by then, or the fee goes to the cap
	Status      DisputeStatus `json:"status"`
	Nonce       *uint64       `json:"nonce,omitempty"`
	Txs         []DisputeTx   `json:"txs,omitempty"`
	MinedTx     string        `json:"mined_tx,omitempty"`
	GasUsed     uint64        `json:"gas_used,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	Updated     time.Time     `json:"updated"`
}

// Active reports whether the dispute still needs watching.
func (d *Dispute) Active() bool { return d.Status == DisputeSent || d.Status == DisputeWaitingFunds }

func disputeKey(id rdn.ChannelID) []byte {
	return append(append([]byte{}, prefixDispute...), channelKey(id)[len(prefixChannel):]...)
}

// SaveDispute makes a dispute's state durable; the watchtower saves before it broadcasts,
// so a restart never loses track of a transaction it sent.
func (l *Ledger) SaveDispute(ctx context.Context, d Dispute) error {
	d.Updated = time.Now().UTC()
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	w := l.chainWrite(&write{sets: []kv{{key: disputeKey(d.Channel), value: data}}, delta: zeroStats()})
	if err := l.enqueue(w); err != nil {
		return err
	}
	return wait(ctx, w)
}

// Disputes returns every dispute, active or not.
func (l *Ledger) Disputes() ([]Dispute, error) {
	var out []Dispute
	err := l.store.scan(context.Background(), prefixDispute, nil, 0, func(key, value []byte) (bool, error) {
		var d Dispute
		if err := json.Unmarshal(value, &d); err != nil {
			return false, fmt.Errorf("ledger: dispute %x: %w", key, err)
		}
		out = append(out, d)
		return true, nil
	})
	return out, err
}
