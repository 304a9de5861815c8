package rdn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func FuzzSignature(f *testing.F) {
	key, _ := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	hash := crypto.Keccak256Hash([]byte("balance"))
	good, _ := Sign(hash, key)
	f.Add(good.Hex(), hash[:])
	f.Add(strings.ToUpper(good.Hex()[2:]), hash[:])
	raw := good
	raw[64] -= 27
	f.Add("0X"+hex.EncodeToString(raw[:]), hash[:])
	high := good
	new(big.Int).Sub(secp256k1N, new(big.Int).SetBytes(good[32:64])).FillBytes(high[32:64])
	f.Add(high.Hex(), hash[:])
	f.Add("0x"+strings.Repeat("00", 65), []byte{})
	f.Add("0x"+strings.Repeat("ff", 64)+"1c", hash[:])
	f.Add("0x"+strings.Repeat("ab", 64)+"1d", hash[:])
	f.Add("0x123", hash[:])
	f.Fuzz(func(t *testing.T, text string, hashBytes []byte) {
		h := common.BytesToHash(hashBytes)
		sig, err := DecodeSignature(text)
		if err != nil {
			if _, perr := ParseSignature(text); perr == nil {
				t.Fatal("ParseSignature accepted what DecodeSignature refused")
			}
			return
		}
		// The hex form round-trips (v normalized to 27/28 when it was 0/1).
		if !strings.EqualFold(sig.Hex()[2:130], text[2:130]) {
			t.Fatalf("%s re-encodes as %s", text, sig.Hex())
		}
		if back, err := DecodeSignature(sig.Hex()); err != nil || back != sig {
			t.Fatalf("Hex does not decode to itself: %v", err)
		}
		if sig[64] < 27 {
			t.Fatalf("v %d not normalized", sig[64])
		}
		checkErr := Check(sig[:])
		parsed, perr := ParseSignature(text)
		if (perr == nil) != (checkErr == nil) || (perr == nil && parsed != sig) {
			t.Fatalf("ParseSignature (%v) disagrees with Check (%v)", perr, checkErr)
		}
		addr, rerr := Recover(h, sig[:])
		if rerr == nil && checkErr != nil {
			t.Fatalf("Recover succeeded on a signature Check refuses: %v", checkErr)
		}
		if checkErr != nil {
			if !errors.Is(rerr, checkErr) && rerr.Error() != checkErr.Error() {
				t.Fatalf("Recover error %v, Check error %v", rerr, checkErr)
			}
			return
		}
		// A valid signature recovers to the same address as go-ethereum says.
		norm := sig
		norm[64] -= 27
		pub, err := crypto.SigToPub(h[:], norm[:])
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Recover: %v, go-ethereum: %v", rerr, err)
		}
		if err == nil && crypto.PubkeyToAddress(*pub) != addr {
			t.Fatalf("Recover gives %s, go-ethereum %s", addr, crypto.PubkeyToAddress(*pub))
		}
		if _, err := Recover(h, append(bytes.Clone(sig[:]), 0)); err == nil {
			t.Fatal("Recover accepted 66 bytes")
		}
	})
}
