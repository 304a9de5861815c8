package rdn

import (
	"bytes"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// go test -bench . -benchmem ./rdn
func BenchmarkBalanceSigner(b *testing.B) {
	key, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xa0}, 32))
	bp := Balance{Receiver: receiverB1, OpenBlock: 315123, Balance: big.NewInt(8), Contract: mainnetContract}
	sig, _ := bp.Sign(key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bp.Signer(sig[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBalanceHash(b *testing.B) {
	bp := Balance{Receiver: receiverB1, OpenBlock: 315123, Balance: big.NewInt(8), Contract: mainnetContract}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bp.Hash(); err != nil {
			b.Fatal(err)
		}
	}
}

// The typed scheme costs what the legacy one does: one digest (two keccaks more, for the
// domain separator and the struct) and one recovery.
func BenchmarkTypedBalanceSigner(b *testing.B) {
	key, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xa0}, 32))
	bp := Balance{Scheme: SchemeTyped, ChainID: 31337, Receiver: receiverB1, OpenBlock: 315123, Balance: big.NewInt(8), Contract: mainnetContract}
	sig, _ := bp.Sign(key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bp.Signer(sig[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTypedBalanceHash(b *testing.B) {
	bp := Balance{Scheme: SchemeTyped, ChainID: 31337, Receiver: receiverB1, OpenBlock: 315123, Balance: big.NewInt(8), Contract: mainnetContract}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bp.Hash(); err != nil {
			b.Fatal(err)
		}
	}
}
