package chain

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/uraiden/uraiden/ledger"
)

// FuzzDecodeLog feeds the event decoder logs as a faulty or hostile node could return them:
// any topics, any data. kind picks the first topic among the five events (or none, or a
// foreign one); the rest of topics is cut into 32-byte topics.
func FuzzDecodeLog(f *testing.F) {
	word := func(v int64) []byte { return common.BigToHash(big.NewInt(v)).Bytes() }
	sender := common.HexToHash("0x00000000000000000000000000000000000000aa").Bytes()
	receiver := common.HexToHash("0x00000000000000000000000000000000000000bb").Bytes()
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	f.Add(uint8(0), cat(sender, receiver), word(100), uint64(7))                               // ChannelCreated(sender, receiver; deposit)
	f.Add(uint8(1), cat(sender, receiver, word(7)), word(5), uint64(9))                        // ChannelToppedUp(sender, receiver, open_block; added)
	f.Add(uint8(2), cat(sender, receiver, word(7)), word(3), uint64(10))                       // ChannelCloseRequested
	f.Add(uint8(3), cat(sender, receiver, word(7)), word(3), uint64(11))                       // ChannelSettled
	f.Add(uint8(4), cat(sender, receiver, word(7)), word(2), uint64(12))                       // ChannelWithdraw
	f.Add(uint8(1), cat(sender, receiver, word(1<<40)), word(5), uint64(9))                    // open block beyond uint32
	f.Add(uint8(0), []byte{}, []byte{}, uint64(0))                                             // topics missing
	f.Add(uint8(5), cat(sender), word(1), uint64(1))                                           // foreign event
	f.Add(uint8(6), []byte{}, []byte{}, uint64(1))                                             // no topic at all
	f.Add(uint8(2), cat(sender, receiver, word(7)), cat(word(3), word(4)), uint64(^uint64(0))) // challenge period overflow
	w := NewWatcher(WatcherConfig{ChallengePeriod: 500}, nil)
	kinds := []ledger.EventKind{ledger.Created, ledger.ToppedUp, ledger.CloseRequested, ledger.Settled, ledger.Withdrawn}
	f.Fuzz(func(t *testing.T, kind uint8, topicBytes, data []byte, block uint64) {
		l := &types.Log{Data: data, BlockNumber: block}
		switch k := int(kind) % 7; {
		case k < 5:
			l.Topics = append(l.Topics, w.topics[k])
		case k == 5:
			l.Topics = append(l.Topics, common.HexToHash("0x1234"))
		}
		for len(topicBytes) >= 32 {
			l.Topics = append(l.Topics, common.BytesToHash(topicBytes[:32]))
			topicBytes = topicBytes[32:]
		}
		ev, err := w.decodeLog(l)
		if err != nil {
			return
		}
		k := -1
		for i, topic := range w.topics {
			if len(l.Topics) > 0 && l.Topics[0] == topic {
				k = i
			}
		}
		if k < 0 {
			t.Fatalf("decoded a log whose first topic is no event of ours: %+v", ev)
		}
		if ev.Kind != kinds[k] || ev.Block != block || ev.Amount == nil || ev.Amount.Sign() < 0 {
			t.Fatalf("decoded %+v from a %v log", ev, kinds[k])
		}
		if ev.Channel.Sender != common.BytesToAddress(l.Topics[1][:]) {
			t.Fatalf("sender %s, topic %s", ev.Channel.Sender, l.Topics[1])
		}
	})
}
