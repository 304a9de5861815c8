package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// State is where a channel is, as the sender knows it.
type State string

// Channel states.
const (
	StateOpen    State = "open"
	StateClosing State = "closing" // uncooperative close requested: settle after SettleBlock
	StateClosed  State = "closed"  // settled or closed cooperatively: gone from the contract
)

// Channel is one of the sender's channels.
type Channel struct {
	Receiver  common.Address `json:"receiver"`
	OpenBlock uint32         `json:"open_block"`
	Deposit   *big.Int       `json:"deposit"`
	// Balance is the highest balance signed on the channel, Signature its proof (hex).
	Balance   *big.Int `json:"balance"`
	Signature string   `json:"balance_signature,omitempty"`
	// Scheme is the scheme Signature is in. Legacy is left out of the file, so a store
	// written before typed proofs, which has no such field, reads as legacy.
	Scheme rdn.Scheme `json:"proof_scheme,omitempty"`
	State  State      `json:"state"`
	// SettleBlock is when an uncooperative close may be settled (StateClosing only).
	SettleBlock uint32 `json:"settle_block,omitempty"`
	// API is the server's /api/1 base URL, learned from a 402, for the cooperative close.
	API string `json:"api,omitempty"`
}

// Key identifies the channel among the sender's.
func (ch *Channel) Key() string { return fmt.Sprintf("%s/%d", ch.Receiver.Hex(), ch.OpenBlock) }

// Capacity is what is left to spend: deposit minus balance.
func (ch *Channel) Capacity() *big.Int { return new(big.Int).Sub(ch.Deposit, ch.Balance) }

func (ch *Channel) clone() Channel {
	cp := *ch
	cp.Deposit, cp.Balance = new(big.Int).Set(ch.Deposit), new(big.Int).Set(ch.Balance)
	return cp
}

// Store is the sender's local record of channels and signed balances: a JSON file written
// atomically (a temporary file, fsync, rename) before any balance it records is sent, so a
// crash never makes the client sign one value twice. With no path it lives in memory.
// Its methods are not synchronized: the Client's mutex guards it.
type Store struct {
	path     string
	Sender   common.Address      `json:"sender"`
	Contract common.Address      `json:"contract"`
	Channels map[string]*Channel `json:"channels"`
}

// OpenStore loads the store at path (a missing file is an empty store). A file of another
// sender or contract is refused rather than mixed up.
func OpenStore(path string, sender, contract common.Address) (*Store, error) {
	s := &Store{path: path, Sender: sender, Contract: contract, Channels: map[string]*Channel{}}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if s.Sender != sender || s.Contract != contract {
		return nil, fmt.Errorf("store %s belongs to sender %s on contract %s", path, s.Sender, s.Contract)
	}
	if s.Channels == nil {
		s.Channels = map[string]*Channel{}
	}
	return s, nil
}

// Save writes the store atomically.
func (s *Store) Save() error {
	if s.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// sorted returns the channels by receiver and open block.
func (s *Store) sorted() []*Channel {
	out := make([]*Channel, 0, len(s.Channels))
	for _, ch := range s.Channels {
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b *Channel) int {
		if c := a.Receiver.Cmp(b.Receiver); c != 0 {
			return c
		}
		return int(a.OpenBlock) - int(b.OpenBlock)
	})
	return out
}
