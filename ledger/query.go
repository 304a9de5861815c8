package ledger

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/uraiden/uraiden/rdn"
)

// Query selects channels for Channels.
type Query struct {
	// Sender, when set, lists only this sender's channels.
	Sender *common.Address
	// States lists channels in these states; empty lists every state.
	States []State
	// After continues a listing strictly after this channel (the last one of the previous
	// page); nil starts at the beginning.
	After *rdn.ChannelID
	// Limit caps the channels returned (at least 1).
	Limit int
}

// Page is a part of a listing.
type Page struct {
	Channels []*Channel
	// Next is where the listing continues (pass it as Query.After), nil at the end. A page
	// may hold fewer than Limit channels and still have a Next: see MaxScan.
	Next *rdn.ChannelID
}

// MaxScan bounds the records one Channels call reads, so that a listing filtered by state
// over many channels in other states answers in bounded time; it then returns a shorter
// page with a Next to continue from.
const MaxScan = 10_000

// Channels lists channels in key order: by sender, then by open block. It reads a
// consistent snapshot of the store, but for a channel cached in memory it returns the cached
// state, which is what payments are decided on and may be a commit ahead of the disk: the
// listing then agrees with Channel and with what clients were just told, and a cached state
// that never reaches the disk means a failed write, after which the ledger refuses
// everything anyway. A channel created by a write still in flight shows up once it lands.
func (l *Ledger) Channels(q Query) (Page, error) {
	if q.Limit < 1 {
		q.Limit = 1
	}
	prefix := prefixChannel
	if q.Sender != nil {
		prefix = append(append([]byte(nil), prefixChannel...), q.Sender.Bytes()...)
	}
	start := prefix
	if q.After != nil {
		// Keys all have one length, so the first key after After's is above key ‖ 0x00.
		start = append(channelKey(*q.After), 0)
	}
	var page Page
	scanned := 0
	var last rdn.ChannelID
	err := l.store.scan(context.Background(), prefix, start, min(q.Limit, 256), func(key, value []byte) (bool, error) {
		if len(page.Channels) == q.Limit || scanned == MaxScan {
			// More records follow: continue after the last one read (any between the
			// page's last channel and it did not match).
			page.Next = &last
			return false, nil
		}
		scanned++
		c, err := l.listed(key, value)
		if err != nil {
			return false, err
		}
		last = c.ID
		if matches(c, q.States) {
			page.Channels = append(page.Channels, c)
		}
		return true, nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("ledger: list channels: %w", err)
	}
	return page, nil
}

// listed returns the channel of a record: the cached state when the channel is in memory.
func (l *Ledger) listed(key, value []byte) (*Channel, error) {
	id, err := channelIDFromKey(key)
	if err != nil {
		return nil, err
	}
	if c := l.cached(id); c != nil {
		return c, nil
	}
	return unmarshalChannel(id, value)
}

// cached returns a copy of the cached state of a channel, or nil when it is not cached.
func (l *Ledger) cached(id rdn.ChannelID) *Channel {
	l.mu.RLock()
	e := l.channels[id]
	l.mu.RUnlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.loaded || e.ch == nil || e.detached {
		// Evicted since the lookup: a newer entry may hold a later state, the disk has this one.
		return nil
	}
	return e.ch.clone()
}

func matches(c *Channel, states []State) bool {
	if len(states) == 0 {
		return true
	}
	for _, s := range states {
		if c.State == s {
			return true
		}
	}
	return false
}
