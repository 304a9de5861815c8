package contracts_test

import (
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/uraiden/uraiden/contracts"
)

func containsReason(err error, reason string) bool {
	return err != nil && strings.Contains(err.Error(), "execution reverted: "+reason)
}

func ethCall(from common.Address, to *common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{From: from, To: to, Data: data}
}

func bindTransact(h *harness, opts *bind.TransactOpts, data []byte) (*types.Transaction, error) {
	return bind.Transact(h.channels, opts, data)
}

func obnTopic(obn uint32) common.Hash { return common.BigToHash(new(big.Int).SetUint64(uint64(obn))) }

// assertEvent checks that the receipt holds the named channel event with the given indexed
// topics (addresses or hashes).
func assertEvent(t *testing.T, r *types.Receipt, name string, topics ...any) {
	t.Helper()
	id := channelsABI.GetABI().Events[name].ID
	for _, l := range r.Logs {
		if len(l.Topics) == 0 || l.Topics[0] != id {
			continue
		}
		ok := len(l.Topics) == len(topics)+1
		for i, want := range topics {
			if !ok {
				break
			}
			switch w := want.(type) {
			case common.Address:
				ok = l.Topics[i+1] == common.BytesToHash(w.Bytes())
			case common.Hash:
				ok = l.Topics[i+1] == w
			}
		}
		if ok {
			return
		}
	}
	t.Errorf("no %s event with topics %v in the receipt", name, topics)
}

func countEvents(r *types.Receipt, name string) int {
	id := channelsABI.GetABI().Events[name].ID
	n := 0
	for _, l := range r.Logs {
		if len(l.Topics) > 0 && l.Topics[0] == id {
			n++
		}
	}
	return n
}

func settledEvent(t *testing.T, r *types.Receipt) *contracts.RaidenMicroTransferChannelsChannelSettled {
	t.Helper()
	for _, l := range r.Logs {
		if ev, err := channelsABI.UnpackChannelSettledEvent(l); err == nil {
			return ev
		}
	}
	t.Fatal("no ChannelSettled event")
	return nil
}

var secp256k1N = crypto.S256().Params().N

// flipS returns the malleable twin of a valid signature: (r, n-s, v^1).
func flipS(sig []byte) []byte {
	out := slices.Clone(sig)
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(secp256k1N, s).FillBytes(out[32:64])
	out[64] = 27 + 28 - out[64]
	return out
}

func flipByte(sig []byte, i int) []byte {
	out := slices.Clone(sig)
	out[i] ^= 0x01
	return out
}
