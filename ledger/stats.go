package ledger

import (
	"encoding/json"
	"math/big"
)

// Stats are counters kept up to date with every write, so that reading them costs nothing.
// Sums are over channels not yet settled.
type Stats struct {
	OpenChannels    int64
	ClosingChannels int64
	SettledChannels int64
	// DepositSum counts every deposit seen, confirmed or not.
	DepositSum *big.Int
	// BalanceSum is the sum of the highest balance proofs held.
	BalanceSum *big.Int
	// ChargedSum is the sum of the prices of the requests served.
	ChargedSum *big.Int
	// WithdrawnSum is what the receiver already took out of open channels.
	WithdrawnSum *big.Int
}

// SyncState is how far the ledger has followed the chain.
type SyncState struct {
	// Cursor is the last block whose events are applied.
	Cursor uint64 `json:"cursor"`
	// CursorHash is that block's hash, to notice a different chain or a reorganization.
	CursorHash string `json:"cursor_hash"`
	// Confirmed is the highest block whose events count as confirmed.
	Confirmed uint64 `json:"confirmed"`
	// Recent are the hashes of the last blocks followed, newest last, deeper than the
	// confirmations: where to find the fork point of a reorganization.
	Recent []BlockRef `json:"recent,omitempty"`
}

// BlockRef names a block.
type BlockRef struct {
	Number uint64 `json:"n"`
	Hash   string `json:"h"`
}

func zeroStats() Stats {
	return Stats{DepositSum: new(big.Int), BalanceSum: new(big.Int), ChargedSum: new(big.Int), WithdrawnSum: new(big.Int)}
}

func (s Stats) clone() Stats {
	c := s
	c.DepositSum = new(big.Int).Set(s.DepositSum)
	c.BalanceSum = new(big.Int).Set(s.BalanceSum)
	c.ChargedSum = new(big.Int).Set(s.ChargedSum)
	c.WithdrawnSum = new(big.Int).Set(s.WithdrawnSum)
	return c
}

func (s *Stats) add(d Stats) {
	s.OpenChannels += d.OpenChannels
	s.ClosingChannels += d.ClosingChannels
	s.SettledChannels += d.SettledChannels
	s.DepositSum.Add(s.DepositSum, d.DepositSum)
	s.BalanceSum.Add(s.BalanceSum, d.BalanceSum)
	s.ChargedSum.Add(s.ChargedSum, d.ChargedSum)
	s.WithdrawnSum.Add(s.WithdrawnSum, d.WithdrawnSum)
}

// contribution is what one channel adds to the counters; a change of a channel changes the
// counters by contribution(after) - contribution(before), which keeps them exact however a
// channel changes.
func contribution(c *Channel) Stats {
	s := zeroStats()
	if c == nil {
		return s
	}
	switch c.State {
	case StateOpen:
		s.OpenChannels = 1
	case StateClosing:
		s.ClosingChannels = 1
	case StateSettled, StateOrphaned:
		if c.State == StateSettled {
			s.SettledChannels = 1
		}
		return s
	}
	s.DepositSum.Set(c.TotalDeposit())
	s.BalanceSum.Set(c.Balance)
	s.ChargedSum.Set(c.Charged)
	s.WithdrawnSum.Set(c.Withdrawn)
	return s
}

func statsDelta(before, after *Channel) Stats {
	d := contribution(after)
	b := contribution(before)
	d.OpenChannels -= b.OpenChannels
	d.ClosingChannels -= b.ClosingChannels
	d.SettledChannels -= b.SettledChannels
	d.DepositSum.Sub(d.DepositSum, b.DepositSum)
	d.BalanceSum.Sub(d.BalanceSum, b.BalanceSum)
	d.ChargedSum.Sub(d.ChargedSum, b.ChargedSum)
	d.WithdrawnSum.Sub(d.WithdrawnSum, b.WithdrawnSum)
	return d
}

type statsJSON struct {
	Open, Closing, Settled               int64
	Deposit, Balance, Charged, Withdrawn string
}

func (s Stats) marshal() []byte {
	data, _ := json.Marshal(statsJSON{s.OpenChannels, s.ClosingChannels, s.SettledChannels,
		s.DepositSum.String(), s.BalanceSum.String(), s.ChargedSum.String(), s.WithdrawnSum.String()})
	return data
}

func unmarshalStats(data []byte) (Stats, error) {
	var j statsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Stats{}, err
	}
	s := zeroStats()
	s.OpenChannels, s.ClosingChannels, s.SettledChannels = j.Open, j.Closing, j.Settled
	for dst, src := range map[*big.Int]string{s.DepositSum: j.Deposit, s.BalanceSum: j.Balance, s.ChargedSum: j.Charged, s.WithdrawnSum: j.Withdrawn} {
		if _, ok := dst.SetString(src, 10); !ok {
			return Stats{}, errCorrupt
		}
	}
	return s, nil
}
