package rdn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	gethmath "github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
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

// FuzzTypedProof signs typed messages of every kind over fuzzed fields, checks the digest
// against go-ethereum's EIP-712 implementation and the round trip, and feeds fuzzed and
// corrupted signatures to the recovery: none that the contract would refuse yields an
// address, and no corruption of the real one recovers the signer.
func FuzzTypedProof(f *testing.F) {
	key, _ := crypto.HexToECDSA("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	signer := crypto.PubkeyToAddress(key.PublicKey)
	contract := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3").Bytes()
	party := common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").Bytes()
	one := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil).Bytes()
	for kind := range uint8(3) {
		f.Add(uint64(31337), contract, party, uint32(42), one, int64(1767225600), kind, []byte{}, uint8(0), uint8(0))
	}
	f.Add(uint64(1337), contract, party, uint32(0), maxUint192.Bytes(), int64(1), uint8(0), []byte{}, uint8(64), uint8(27))
	f.Add(uint64(1<<63), []byte{}, []byte{}, ^uint32(0), new(big.Int).Lsh(big.NewInt(1), 192).Bytes(), int64(-1), uint8(2), []byte{}, uint8(40), uint8(1))
	f.Add(uint64(0), contract, party, uint32(42), one, int64(1767225600), uint8(1), []byte("0"), uint8(64), uint8(1))
	f.Add(uint64(31337), contract, party, uint32(42), one, int64(1767225600), uint8(0), bytes.Repeat([]byte{0xff}, 65), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, chainID uint64, contractBytes, partyBytes []byte, openBlock uint32, balanceBytes []byte,
		expires int64, kind uint8, fuzzed []byte, flipAt, flipWith uint8) {
		contract, party, balance := common.BytesToAddress(contractBytes), common.BytesToAddress(partyBytes), new(big.Int).SetBytes(balanceBytes)
		var (
			hash    func() (common.Hash, error)
			sign    func() (Signature, error)
			recover func([]byte) (common.Address, error)
			typed   = apitypes.TypedData{
				Types: apitypes.Types{"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
					{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}}},
				Domain: apitypes.TypedDataDomain{Name: "uraiden", Version: "1",
					ChainId: (*gethmath.HexOrDecimal256)(new(big.Int).SetUint64(chainID)), VerifyingContract: contract.Hex()},
				Message: apitypes.TypedDataMessage{"openBlock": strconv.FormatUint(uint64(openBlock), 10), "balance": balance.String()},
			}
		)
		switch kind % 3 {
		case 0:
			m := Balance{Scheme: SchemeTyped, ChainID: chainID, Contract: contract, Receiver: party, OpenBlock: openBlock, Balance: balance}
			hash, sign, recover = m.Hash, func() (Signature, error) { return m.Sign(key) }, m.Signer
			typed.PrimaryType, typed.Message["receiver"] = "BalanceProof", party.Hex()
			typed.Types["BalanceProof"] = []apitypes.Type{{Name: "receiver", Type: "address"}, {Name: "openBlock", Type: "uint32"}, {Name: "balance", Type: "uint192"}}
		case 1:
			m := Closing{Scheme: SchemeTyped, ChainID: chainID, Contract: contract, Sender: party, OpenBlock: openBlock, Balance: balance}
			hash, sign, recover = m.Hash, func() (Signature, error) { return m.Sign(key) }, m.Signer
			typed.PrimaryType, typed.Message["sender"] = "ClosingBalance", party.Hex()
			typed.Types["ClosingBalance"] = []apitypes.Type{{Name: "sender", Type: "address"}, {Name: "openBlock", Type: "uint32"}, {Name: "balance", Type: "uint192"}}
		default:
			m := CloseRequest{Scheme: SchemeTyped, ChainID: chainID, Contract: contract, Receiver: party, Sender: signer,
				OpenBlock: openBlock, Balance: balance, Expires: expires}
			hash, sign, recover = m.Hash, func() (Signature, error) { return m.Sign(key) }, m.Signer
			typed.PrimaryType, typed.Message["receiver"] = "CloseRequest", party.Hex()
			typed.Message["expires"] = strconv.FormatInt(expires, 10)
			typed.Types["CloseRequest"] = []apitypes.Type{{Name: "receiver", Type: "address"}, {Name: "openBlock", Type: "uint32"},
				{Name: "balance", Type: "uint192"}, {Name: "expires", Type: "uint64"}}
		}

		h, err := hash()
		invalid := chainID == 0 || balance.BitLen() > 192 || (kind%3 == 2 && expires <= 0)
		if invalid {
			if err == nil {
				t.Fatalf("hashed an invalid message (chain %d, balance of %d bits, expires %d)", chainID, balance.BitLen(), expires)
			}
			if _, err := sign(); err == nil {
				t.Fatal("signed an invalid message")
			}
			if _, err := recover(fuzzed); err == nil {
				t.Fatal("recovered a signer of an invalid message")
			}
			return
		}
		if err != nil {
			t.Fatalf("hash: %v", err)
		}
		want, _, err := apitypes.TypedDataAndHash(typed)
		if err != nil {
			t.Fatalf("go-ethereum: %v", err)
		}
		if !bytes.Equal(h[:], want) {
			t.Fatalf("digest %s, go-ethereum %x", h.Hex(), want)
		}

		sig, err := sign()
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(sig[:]); err != nil || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("signed %s, which Check refuses: %v", sig, err)
		}
		if got, err := recover(sig[:]); err != nil || got != signer {
			t.Fatalf("round trip: %s, %v", got, err)
		}

		// A fuzzed signature yields an address only if the contract would take it, and then
		// the one go-ethereum recovers.
		got, err := recover(fuzzed)
		if checkErr := Check(fuzzed); checkErr != nil {
			if err == nil {
				t.Fatalf("recovered %s from a signature Check refuses: %v", got, checkErr)
			}
		} else if err == nil {
			norm := bytes.Clone(fuzzed)
			if norm[64] >= 27 {
				norm[64] -= 27
			}
			if pub, perr := crypto.SigToPub(h[:], norm); perr != nil || crypto.PubkeyToAddress(*pub) != got {
				t.Fatalf("recovered %s, go-ethereum: %v", got, perr)
			}
		}

		// The real signature with one byte changed is another signature, and not the signer's.
		corrupt := sig
		corrupt[int(flipAt)%SignatureLength] ^= flipWith
		if v := corrupt[64]; v == 0 || v == 1 {
			corrupt[64] += 27 // the same signature with v as 0/1
		}
		if corrupt == sig {
			return
		}
		if got, err := recover(corrupt[:]); err == nil && got == signer {
			t.Fatalf("the corrupted signature %s recovers the signer", corrupt)
		}
	})
}
