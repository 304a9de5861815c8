package rdn

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// Known-answer values from docs/protocol.md §6.
var (
	receiverB1      = common.HexToAddress("0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd")
	mainnetContract = common.HexToAddress("0x1440317CB15499083dEE3dDf49C2bD51D0d92e33")
)

func repeatedKey(t *testing.T, b byte) (*big.Int, common.Address) {
	t.Helper()
	key, err := crypto.ToECDSA(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return key.D, crypto.PubkeyToAddress(key.PublicKey)
}

func TestKnownAnswers(t *testing.T) {
	if got := crypto.Keccak256Hash([]byte("a")).Hex(); got != "0x3ac225168df54212a25c1c01fd35bebfea408fdac2e31ddd6f80a4bbf9a5f1cb" {
		t.Errorf("keccak256(a) = %s", got)
	}
	if _, addr := repeatedKey(t, 0xa0); addr != common.HexToAddress("0x8Bf640A099fE945DA46F354d3B49c48a125F48B6") {
		t.Errorf("address of 0xa0… = %s", addr)
	}
	if _, addr := repeatedKey(t, 0xb1); addr != receiverB1 {
		t.Errorf("address of 0xb1… = %s", addr)
	}
	if got := BalanceSchemaHash().Hex(); got != "0x58609bfe78970060668532972d17b7dead82d88aa62966110094cd806a421d9c" {
		t.Errorf("balance schema hash = %s", got)
	}
	if got := ClosingSchemaHash().Hex(); got != "0x9d3122a6193f337abb0b13a1e6d57b164a6acb15d825b38a5bd2e66af512f09f" {
		t.Errorf("closing schema hash = %s", got)
	}
}

func TestBalanceProofLayout(t *testing.T) {
	packed, err := PackedValues(balanceMessageID, receiverB1, 315123, big.NewInt(8), mainnetContract)
	if err != nil {
		t.Fatal(err)
	}
	const want = "0x53656e6465722062616c616e63652070726f6f66207369676e617475726508c86b491a37c2ffc25072a17c7a97ef2d0357dd0004cef30000000000000000000000000000000000000000000000081440317cb15499083dee3ddf49c2bd51d0d92e33"
	if got := hexutil.Encode(packed); got != want {
		t.Errorf("packed values\n got %s\nwant %s", got, want)
	}
	h, err := Balance{Receiver: receiverB1, OpenBlock: 315123, Balance: big.NewInt(8), Contract: mainnetContract}.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if h.Hex() != "0x7ee49422612d99d4ca0d50079d5295912aad07cc1c7246b66f49b7b222e78015" {
		t.Errorf("message hash = %s", h.Hex())
	}
}

// The typed-data v1 vector of µRaiden's contract tests: a signature made by MetaMask's
// eth_signTypedData recovers to the expected address with our Recover.
func TestTypedDataV1Vector(t *testing.T) {
	addr := common.HexToAddress("0x5601Ea8445A5d96EEeBF89A67C4199FbB7a43Fbb")
	schema := crypto.Keccak256([]byte("address Address" + "uint32 Value" + "uint192 Value2"))
	var values []byte
	values = append(values, addr.Bytes()...)
	values = append(values, common.LeftPadBytes(big.NewInt(1000).Bytes(), 4)...)
	values = append(values, common.LeftPadBytes(big.NewInt(2000).Bytes(), 24)...)
	hash := crypto.Keccak256Hash(schema, crypto.Keccak256(values))
	sig := hexutil.MustDecode("0x0adc437691e266072e9aa1763329062a6b2fa1d7f94034f1b1e691218fe9fd285f4f20132fa00230f591571a3575456bb382040e02e93ff0f32544907748a9821c")
	got, err := Recover(hash, sig)
	if err != nil {
		t.Fatal(err)
	}
	if got != addr {
		t.Errorf("recovered %s, want %s", got, addr)
	}
}

func TestSignRecoverRoundTrip(t *testing.T) {
	senderKey, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xa0}, 32))
	receiverKey, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xb1}, 32))
	sender := crypto.PubkeyToAddress(senderKey.PublicKey)

	bp := Balance{Receiver: receiverB1, OpenBlock: 315123, Balance: big.NewInt(8), Contract: mainnetContract}
	sig, err := bp.Sign(senderKey)
	if err != nil {
		t.Fatal(err)
	}
	if v := sig[64]; v != 27 && v != 28 {
		t.Errorf("v = %d, want 27 or 28", v)
	}
	if got, err := bp.Signer(sig[:]); err != nil || got != sender {
		t.Errorf("Signer = %s, %v; want %s", got, err, sender)
	}
	// RFC 6979: signing is deterministic, as the original Python signer was.
	again, _ := bp.Sign(senderKey)
	if again != sig {
		t.Error("signing the same proof twice gave different signatures")
	}
	// v as 0/1 is the same signature to the contract.
	alt := sig
	alt[64] -= 27
	if got, err := bp.Signer(alt[:]); err != nil || got != sender {
		t.Errorf("Signer with v-27 = %s, %v", got, err)
	}

	cl := Closing{Sender: sender, OpenBlock: 315123, Balance: big.NewInt(8), Contract: mainnetContract}
	csig, err := cl.Sign(receiverKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cl.Signer(csig[:]); err != nil || got != receiverB1 {
		t.Errorf("closing Signer = %s, %v; want %s", got, err, receiverB1)
	}
	// The two constructions are domain-separated: a balance proof is not a closing signature.
	if got, _ := cl.Signer(sig[:]); got == sender {
		t.Error("a balance-proof signature verified as a closing signature")
	}
}

func TestFlippingAnyFieldChangesSigner(t *testing.T) {
	key, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xa0}, 32))
	sender := crypto.PubkeyToAddress(key.PublicKey)
	base := Balance{Receiver: receiverB1, OpenBlock: 10, Balance: big.NewInt(100), Contract: mainnetContract}
	sig, _ := base.Sign(key)
	for name, changed := range map[string]Balance{
		"receiver":   {Receiver: sender, OpenBlock: 10, Balance: big.NewInt(100), Contract: mainnetContract},
		"open block": {Receiver: receiverB1, OpenBlock: 11, Balance: big.NewInt(100), Contract: mainnetContract},
		"balance":    {Receiver: receiverB1, OpenBlock: 10, Balance: big.NewInt(101), Contract: mainnetContract},
		"contract":   {Receiver: receiverB1, OpenBlock: 10, Balance: big.NewInt(100), Contract: receiverB1},
	} {
		if got, err := changed.Signer(sig[:]); err == nil && got == sender {
			t.Errorf("changing the %s still recovers the sender", name)
		}
	}
}

func TestRejectsWhatTheContractRejects(t *testing.T) {
	key, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xa0}, 32))
	bp := Balance{Receiver: receiverB1, OpenBlock: 10, Balance: big.NewInt(100), Contract: mainnetContract}
	sig, _ := bp.Sign(key)
	h, _ := bp.Hash()

	highS := sig
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(secp256k1N, s).FillBytes(highS[32:64])
	highS[64] = 27 + 28 - highS[64] // the malleable twin flips the recovery id

	eip155 := sig
	eip155[64] = 37

	tests := []struct {
		name string
		sig  []byte
		want error
	}{
		{"short", sig[:64], ErrSignatureLength},
		{"long", append(sig[:], 0), ErrSignatureLength},
		{"v=37", eip155[:], ErrSignatureV},
		{"v=2", append(append([]byte{}, sig[:64]...), 2), ErrSignatureV},
		{"high s", highS[:], ErrSignatureHighS},
		{"zero r", append(make([]byte, 32), sig[32:]...), ErrSignatureRS},
	}
	for _, tt := range tests {
		if _, err := Recover(h, tt.sig); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	// The malleable twin really is a valid ECDSA signature: only our check refuses it.
	twin := highS
	twin[64] -= 27
	if pub, err := crypto.SigToPub(h[:], twin[:]); err != nil || crypto.PubkeyToAddress(*pub) != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("test setup: high-s twin does not recover the signer (%v)", err)
	}
}

func TestParseSignature(t *testing.T) {
	key, _ := crypto.ToECDSA(bytes.Repeat([]byte{0xa0}, 32))
	sig, _ := Sign(common.Hash{1}, key)
	got, err := ParseSignature(sig.Hex())
	if err != nil || got != sig {
		t.Fatalf("ParseSignature(Hex()) = %x, %v", got, err)
	}
	low := sig
	low[64] -= 27
	if got, err := ParseSignature(low.Hex()); err != nil || got != sig {
		t.Errorf("v as 0/1 is not normalized to 27/28: %x, %v", got, err)
	}
	if _, err := ParseSignature(strings.TrimPrefix(sig.Hex(), "0x")); !errors.Is(err, ErrSignatureHex) {
		t.Errorf("missing 0x: err = %v", err)
	}
	if _, err := ParseSignature("0xzz"); !errors.Is(err, ErrSignatureHex) {
		t.Errorf("bad hex: err = %v", err)
	}
	if _, err := ParseSignature("0x1234"); !errors.Is(err, ErrSignatureLength) {
		t.Errorf("short: err = %v", err)
	}
}

func TestBalanceRange(t *testing.T) {
	for _, b := range []*big.Int{nil, big.NewInt(-1), new(big.Int).Lsh(big.NewInt(1), 192)} {
		if _, err := (Balance{Balance: b}).Hash(); !errors.Is(err, ErrBalanceRange) {
			t.Errorf("balance %v: err = %v", b, err)
		}
	}
	if _, err := (Balance{Balance: maxUint192}).Hash(); err != nil {
		t.Errorf("max uint192: %v", err)
	}
}
