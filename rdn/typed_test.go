package rdn

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/uraiden/uraiden/internal/dev/devtools"
)

// The typed vector set of docs/protocol.md §6.1, shared with the contract's tests: anvil's
// first two accounts as sender and receiver, the contract at anvil's first deployment address.
const (
	vectorContract    = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
	vectorReceiver    = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	vectorSender      = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	vectorSenderKey   = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	vectorReceiverKey = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
	vectorOpenBlock   = 42
	vectorBalance     = "1000000000000000000"
	vectorExpires     = 1767225600
)

var vectorChains = []uint64{31337, 1337}

// typedCase is one signed typed message of the vector set, as rdn builds it and as the
// independent implementations are told about it.
type typedCase struct {
	name    string
	chainID uint64
	hash    func() (common.Hash, error)
	sign    func() (Signature, error)
	signer  func([]byte) (common.Address, error)
	key     string
	want    common.Address // the signer
	primary string
	fields  []apitypes.Type
	message map[string]any
}

func vectorBalanceValue() *big.Int {
	b, _ := new(big.Int).SetString(vectorBalance, 10)
	return b
}

func typedCases(t *testing.T) []typedCase {
	t.Helper()
	senderKey, err := crypto.HexToECDSA(vectorSenderKey)
	if err != nil {
		t.Fatal(err)
	}
	receiverKey, err := crypto.HexToECDSA(vectorReceiverKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := crypto.PubkeyToAddress(senderKey.PublicKey); got != common.HexToAddress(vectorSender) {
		t.Fatalf("sender key's address %s", got)
	}
	if got := crypto.PubkeyToAddress(receiverKey.PublicKey); got != common.HexToAddress(vectorReceiver) {
		t.Fatalf("receiver key's address %s", got)
	}
	contract, receiver, sender := common.HexToAddress(vectorContract), common.HexToAddress(vectorReceiver), common.HexToAddress(vectorSender)
	var cases []typedCase
	for _, chain := range vectorChains {
		suffix := "@" + strconv.FormatUint(chain, 10)
		bp := Balance{Scheme: SchemeTyped, ChainID: chain, Contract: contract, Receiver: receiver, OpenBlock: vectorOpenBlock, Balance: vectorBalanceValue()}
		cl := Closing{Scheme: SchemeTyped, ChainID: chain, Contract: contract, Sender: sender, OpenBlock: vectorOpenBlock, Balance: vectorBalanceValue()}
		cr := CloseRequest{Scheme: SchemeTyped, ChainID: chain, Contract: contract, Receiver: receiver, Sender: sender,
			OpenBlock: vectorOpenBlock, Balance: vectorBalanceValue(), Expires: vectorExpires}
		cases = append(cases,
			typedCase{
				name: "balance proof" + suffix, chainID: chain, key: vectorSenderKey, want: sender,
				hash: bp.Hash, sign: func() (Signature, error) { return bp.Sign(senderKey) }, signer: bp.Signer,
				primary: "BalanceProof",
				fields:  []apitypes.Type{{Name: "receiver", Type: "address"}, {Name: "openBlock", Type: "uint32"}, {Name: "balance", Type: "uint192"}},
				message: map[string]any{"receiver": vectorReceiver, "openBlock": "42", "balance": vectorBalance},
			},
			typedCase{
				name: "closing" + suffix, chainID: chain, key: vectorReceiverKey, want: receiver,
				hash: cl.Hash, sign: func() (Signature, error) { return cl.Sign(receiverKey) }, signer: cl.Signer,
				primary: "ClosingBalance",
				fields:  []apitypes.Type{{Name: "sender", Type: "address"}, {Name: "openBlock", Type: "uint32"}, {Name: "balance", Type: "uint192"}},
				message: map[string]any{"sender": vectorSender, "openBlock": "42", "balance": vectorBalance},
			},
			typedCase{
				name: "close request" + suffix, chainID: chain, key: vectorSenderKey, want: sender,
				hash: cr.Hash, sign: func() (Signature, error) { return cr.Sign(senderKey) }, signer: cr.Signer,
				primary: "CloseRequest",
				fields: []apitypes.Type{{Name: "receiver", Type: "address"}, {Name: "openBlock", Type: "uint32"},
					{Name: "balance", Type: "uint192"}, {Name: "expires", Type: "uint64"}},
				message: map[string]any{"receiver": vectorReceiver, "openBlock": "42", "balance": vectorBalance,
					"expires": strconv.Itoa(vectorExpires)},
			},
		)
	}
	return cases
}

// The values docs/protocol.md §6.1 gives. The signatures are deterministic (RFC 6979), so
// viem's and go-ethereum's signers produce the same bytes.
var (
	wantDomainSeparator = map[uint64]string{
		31337: "0x0cc68e3e89c4aeb6f8ba6c59878f8b030179d11775ecb4cef7854a0e5995c155",
		1337:  "0xceaaa87ef16e1dcb9c11b7d654dbeb6ed004e1f77d868621e980db05fe08600a",
	}
	wantTyped = map[string]struct{ digest, signature string }{
		"balance proof@31337": {
			"0x799425b301c3e3d92eede9450b868ce207ca9df4a64a78979c7ab999b259bfd5",
			"0x5b0a4eeefff96e505d8327cf5710e38507081ba6cf6458eb2db62b9dfc5d0d7108dc34ad435aa180cfb8ecd1e2b36f75e4cc0773570abf970869a96772522f9a1b"},
		"closing@31337": {
			"0xc71e11d0946368b0d1bd52dd6e638f6af4f111030d914e9916d472ff4b6182ba",
			"0x03df9c9cac1d6c6fdd414afea3dc5c06cb4e06d7be5e5dace97ee459b34f7a7867c8022455f5491975db29ec4d88d9fdd967f42cef572257a5c2e6d80bd1b1161b"},
		"close request@31337": {
			"0xa2baa69badbfcb2d6c0b0f2de2791edf0e6e00a6ede946f04c42d1a4a00f0e18",
			"0xff44ca196dcd326beecfa47bf80fcf5cb373ca22c92f178fb80ba8d4a74ba9092511cf5d22501f592b3926d9474f0c8c3fba04e07ed31209e1b7945862665ce01c"},
		"balance proof@1337": {
			"0x5cbabe86bc78c625fae6d58b5c45a02b90d218304e3f4c2dcbef87b790f7686c",
			"0x08f5e3596b11363db8afb543c459d4b239d6edcf2fdfdd4fbe119da159e9aba107ee506c6c63f58e17632118fe4ab9471e0e30b885840481f253fd6ffa36d02c1c"},
		"closing@1337": {
			"0xa85f1a8e35f4d6d85af8f7dab5978742dbc253913b0122db052cbc01c4881564",
			"0x0c62675f8aaddd060f5bff123958e1e564dfb8e3ade80abd2db82b1005069415050519f15d9aa9dcf1d6dc96990e1dcf6b9fc50eb5183c68de1a0c823cbd92a01c"},
		"close request@1337": {
			"0x1b34337720867c288537732a8d9d83bfa85a947eb6c4e572e60546ef4c979acb",
			"0x597927b6cbd592891154b0c422c18bcca01d89b4270226246382a9590753cc2801854bf422876b19525f2296ad267a067a9e57f751b9cc65e6f5a73930766eb21c"},
	}
)

func TestTypedKnownAnswers(t *testing.T) {
	for name, tc := range map[string]struct {
		got  common.Hash
		want string
	}{
		"domain type hash":        {DomainTypeHash(), "0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f"},
		"balance proof type hash": {BalanceProofTypeHash(), "0x2eea74cdde733f01eb9a39ca0d54c02d874bd362d13791535b7fb47951172cb1"},
		"closing type hash":       {ClosingTypeHash(), "0x1c44b592adc720d177bb406fb6795d51c220668b5d14585978a2b5fbf420a5d1"},
		"close request type hash": {CloseRequestTypeHash(), "0x042d536369f40ac89acb1db8fe4dfa85ae6781e0f2ab5fcba6c09473f9242030"},
	} {
		if tc.got.Hex() != tc.want {
			t.Errorf("%s = %s, want %s", name, tc.got.Hex(), tc.want)
		}
	}
	for chain, want := range wantDomainSeparator {
		if got, err := DomainSeparator(chain, common.HexToAddress(vectorContract)); err != nil || got.Hex() != want {
			t.Errorf("domain separator of chain %d = %s, %v; want %s", chain, got.Hex(), err, want)
		}
	}
	for _, c := range typedCases(t) {
		want := wantTyped[c.name]
		h, err := c.hash()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if h.Hex() != want.digest {
			t.Errorf("%s: digest %s, want %s", c.name, h.Hex(), want.digest)
		}
		sig, err := c.sign()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if sig.Hex() != want.signature {
			t.Errorf("%s: signature %s, want %s", c.name, sig.Hex(), want.signature)
		}
		if got, err := c.signer(sig[:]); err != nil || got != c.want {
			t.Errorf("%s: signer %s, %v; want %s", c.name, got, err, c.want)
		}
	}
}

// go-ethereum's EIP-712 implementation, built from the types spelled out independently,
// gives the same type strings, domain separators and digests.
func TestTypedAgreesWithGoEthereum(t *testing.T) {
	for _, c := range typedCases(t) {
		td := apitypes.TypedData{
			Types: apitypes.Types{
				"EIP712Domain": {{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
					{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}},
				c.primary: c.fields,
			},
			PrimaryType: c.primary,
			Domain: apitypes.TypedDataDomain{Name: "uraiden", Version: "1",
				ChainId: math.NewHexOrDecimal256(int64(c.chainID)), VerifyingContract: vectorContract},
			Message: c.message,
		}
		digest, _, err := apitypes.TypedDataAndHash(td)
		if err != nil {
			t.Fatalf("%s: apitypes: %v", c.name, err)
		}
		if got, err := c.hash(); err != nil || !bytes.Equal(got[:], digest) {
			t.Errorf("%s: rdn digest %s (%v), go-ethereum %s", c.name, got.Hex(), err, hexutil.Encode(digest))
		}
		sep, err := td.HashStruct("EIP712Domain", td.Domain.Map())
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := DomainSeparator(c.chainID, common.HexToAddress(vectorContract)); !bytes.Equal(got[:], sep) {
			t.Errorf("%s: rdn domain separator %s, go-ethereum %s", c.name, got.Hex(), hexutil.Encode(sep))
		}
		typeString := map[string]string{"BalanceProof": BalanceProofType, "ClosingBalance": ClosingType, "CloseRequest": CloseRequestType}[c.primary]
		if got := string(td.EncodeType(c.primary)); got != typeString {
			t.Errorf("%s: go-ethereum's type string %q, rdn's %q", c.name, got, typeString)
		}
		if got := string(td.EncodeType("EIP712Domain")); got != DomainType {
			t.Errorf("go-ethereum's domain type string %q, rdn's %q", got, DomainType)
		}
	}
}

// viem, run in node from the pinned npm packages, the library the paywall signs with: the same
// domain separators and digests, the same signatures, and it recovers the signer from ours.
func TestTypedAgreesWithViem(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed: it runs viem, the independent EIP-712 implementation of this test")
		}
		t.Skip("node is not installed")
	}
	if _, err := devtools.Path("viem"); err != nil {
		t.Fatal(err)
	}
	type viemCase struct {
		Domain      map[string]string          `json:"domain"`
		Types       map[string][]apitypes.Type `json:"types"`
		PrimaryType string                     `json:"primaryType"`
		Message     map[string]any             `json:"message"`
		Key         string                     `json:"key"`
		Signature   string                     `json:"signature"`
	}
	cases := typedCases(t)
	var in []viemCase
	var ours []Signature
	for _, c := range cases {
		sig, err := c.sign()
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, sig)
		in = append(in, viemCase{
			Domain: map[string]string{"name": "uraiden", "version": "1",
				"chainId": strconv.FormatUint(c.chainID, 10), "verifyingContract": vectorContract},
			Types:       map[string][]apitypes.Type{c.primary: c.fields},
			PrimaryType: c.primary, Message: c.message, Key: "0x" + c.key, Signature: sig.Hex(),
		})
	}
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "testdata/eip712.mjs")
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node testdata/eip712.mjs: %v\n%s", err, stderr.Bytes())
	}
	var got []struct{ DomainSeparator, Digest, Signature, Recovered string }
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("viem's answer %s: %v", out, err)
	}
	for i, c := range cases {
		v := got[i]
		if sep, _ := DomainSeparator(c.chainID, common.HexToAddress(vectorContract)); sep != common.HexToHash(v.DomainSeparator) {
			t.Errorf("%s: rdn domain separator %s, viem %s", c.name, sep.Hex(), v.DomainSeparator)
		}
		if h, err := c.hash(); err != nil || h != common.HexToHash(v.Digest) {
			t.Errorf("%s: rdn digest %s (%v), viem %s", c.name, h.Hex(), err, v.Digest)
		}
		if ours[i].Hex() != v.Signature {
			t.Errorf("%s: rdn signature %s, viem %s", c.name, ours[i].Hex(), v.Signature)
		}
		if common.HexToAddress(v.Recovered) != c.want || !common.IsHexAddress(v.Recovered) {
			t.Errorf("%s: viem recovers %s from rdn's signature, want %s", c.name, v.Recovered, c.want)
		}
		// And the other way: rdn recovers the signer from viem's signature.
		if sig, err := hexutil.Decode(v.Signature); err != nil {
			t.Errorf("%s: viem's signature %q: %v", c.name, v.Signature, err)
		} else if addr, err := c.signer(sig); err != nil || addr != c.want {
			t.Errorf("%s: rdn recovers %s (%v) from viem's signature, want %s", c.name, addr, err, c.want)
		}
	}
}

// The chain id is what the typed scheme adds: a proof signed for one chain recovers to
// another address on a second chain with the contract at the same address, where the legacy
// proof verifies on both.
func TestTypedProofIsBoundToTheChain(t *testing.T) {
	key, _ := crypto.HexToECDSA(vectorSenderKey)
	sender := crypto.PubkeyToAddress(key.PublicKey)
	base := Balance{Scheme: SchemeTyped, ChainID: 31337, Contract: common.HexToAddress(vectorContract),
		Receiver: common.HexToAddress(vectorReceiver), OpenBlock: vectorOpenBlock, Balance: vectorBalanceValue()}
	sig, err := base.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	other := base
	other.ChainID = 1337
	if got, err := other.Signer(sig[:]); err == nil && got == sender {
		t.Error("a typed proof for chain 31337 verifies on chain 1337")
	}
	legacy := base
	legacy.Scheme = SchemeLegacy
	lsig, err := legacy.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	legacyOther := legacy
	legacyOther.ChainID = 1337
	if got, err := legacyOther.Signer(lsig[:]); err != nil || got != sender {
		t.Errorf("test premise: the legacy proof is chain-free, yet recovers %s, %v", got, err)
	}
}

// Every field is bound, in each typed message; no typed message passes for another kind or
// for the same content in the legacy scheme.
func TestTypedBindsEveryFieldAndKind(t *testing.T) {
	key, _ := crypto.HexToECDSA(vectorSenderKey)
	sender := crypto.PubkeyToAddress(key.PublicKey)
	contract, receiver := common.HexToAddress(vectorContract), common.HexToAddress(vectorReceiver)
	other := common.HexToAddress("0x00000000000000000000000000000000000000ff")

	bp := Balance{Scheme: SchemeTyped, ChainID: 31337, Contract: contract, Receiver: receiver, OpenBlock: 42, Balance: big.NewInt(5)}
	bpSig, _ := bp.Sign(key)
	for name, change := range map[string]func(*Balance){
		"chain id":   func(b *Balance) { b.ChainID++ },
		"contract":   func(b *Balance) { b.Contract = other },
		"receiver":   func(b *Balance) { b.Receiver = other },
		"open block": func(b *Balance) { b.OpenBlock++ },
		"balance":    func(b *Balance) { b.Balance = big.NewInt(6) },
		"scheme":     func(b *Balance) { b.Scheme = SchemeLegacy },
	} {
		changed := bp
		change(&changed)
		if got, err := changed.Signer(bpSig[:]); err == nil && got == sender {
			t.Errorf("balance proof with the %s changed still recovers the sender", name)
		}
	}

	cl := Closing{Scheme: SchemeTyped, ChainID: 31337, Contract: contract, Sender: receiver, OpenBlock: 42, Balance: big.NewInt(5)}
	clSig, _ := cl.Sign(key)
	for name, change := range map[string]func(*Closing){
		"chain id":   func(c *Closing) { c.ChainID++ },
		"contract":   func(c *Closing) { c.Contract = other },
		"sender":     func(c *Closing) { c.Sender = other },
		"open block": func(c *Closing) { c.OpenBlock++ },
		"balance":    func(c *Closing) { c.Balance = big.NewInt(6) },
		"scheme":     func(c *Closing) { c.Scheme = SchemeLegacy },
	} {
		changed := cl
		change(&changed)
		if got, err := changed.Signer(clSig[:]); err == nil && got == sender {
			t.Errorf("closing with the %s changed still recovers the signer", name)
		}
	}
	// Same party, open block and balance: a balance proof is not a closing signature.
	if got, err := cl.Signer(bpSig[:]); err == nil && got == sender {
		t.Error("a typed balance proof passes as a typed closing signature")
	}

	cr := CloseRequest{Scheme: SchemeTyped, ChainID: 31337, Contract: contract, Receiver: receiver, Sender: sender,
		OpenBlock: 42, Balance: big.NewInt(5), Expires: vectorExpires}
	crSig, _ := cr.Sign(key)
	if got, err := cr.Signer(crSig[:]); err != nil || got != sender {
		t.Fatalf("close request signer %s, %v", got, err)
	}
	for name, change := range map[string]func(*CloseRequest){
		"chain id":   func(c *CloseRequest) { c.ChainID++ },
		"contract":   func(c *CloseRequest) { c.Contract = other },
		"receiver":   func(c *CloseRequest) { c.Receiver = other },
		"open block": func(c *CloseRequest) { c.OpenBlock++ },
		"balance":    func(c *CloseRequest) { c.Balance = big.NewInt(6) },
		"expires":    func(c *CloseRequest) { c.Expires++ },
		"scheme":     func(c *CloseRequest) { c.Scheme = SchemeLegacy },
	} {
		changed := cr
		change(&changed)
		if got, err := changed.Signer(crSig[:]); err == nil && got == sender {
			t.Errorf("close request with the %s changed still recovers the sender", name)
		}
	}
	if got, err := cr.Signer(bpSig[:]); err == nil && got == sender {
		t.Error("a typed balance proof passes as a typed close request")
	}
	// The sender is the signer, not a field: the typed close request's hash ignores it.
	changed := cr
	changed.Sender = other
	if a, _ := cr.Hash(); func() bool { b, _ := changed.Hash(); return a != b }() {
		t.Error("the typed close request hashes the sender field")
	}
}

func TestTypedRefusesWhatItCannotHash(t *testing.T) {
	contract := common.HexToAddress(vectorContract)
	if _, err := (Balance{Scheme: SchemeTyped, Contract: contract, Balance: big.NewInt(1)}).Hash(); !errors.Is(err, ErrChainID) {
		t.Errorf("typed balance proof without a chain id: %v", err)
	}
	if _, err := (Closing{Scheme: SchemeTyped, Contract: contract, Balance: big.NewInt(1)}).Hash(); !errors.Is(err, ErrChainID) {
		t.Errorf("typed closing without a chain id: %v", err)
	}
	if _, err := (CloseRequest{Scheme: SchemeTyped, Contract: contract, Balance: big.NewInt(1), Expires: 1}).Hash(); !errors.Is(err, ErrChainID) {
		t.Errorf("typed close request without a chain id: %v", err)
	}
	if _, err := (CloseRequest{Scheme: SchemeTyped, ChainID: 1, Balance: big.NewInt(1)}).Hash(); err == nil {
		t.Error("typed close request without an expiry: hashed")
	}
	for _, b := range []*big.Int{nil, big.NewInt(-1), new(big.Int).Lsh(big.NewInt(1), 192)} {
		if _, err := (Balance{Scheme: SchemeTyped, ChainID: 1, Balance: b}).Hash(); !errors.Is(err, ErrBalanceRange) {
			t.Errorf("typed balance %v: %v", b, err)
		}
		if _, err := (CloseRequest{Scheme: SchemeTyped, ChainID: 1, Balance: b, Expires: 1}).Hash(); !errors.Is(err, ErrBalanceRange) {
			t.Errorf("typed close request balance %v: %v", b, err)
		}
	}
	if _, err := (Balance{Scheme: SchemeTyped, ChainID: 1, Balance: maxUint192}).Hash(); err != nil {
		t.Errorf("typed max uint192: %v", err)
	}
	if _, err := (Balance{Scheme: 2, ChainID: 1, Balance: big.NewInt(1)}).Hash(); !errors.Is(err, ErrScheme) {
		t.Errorf("scheme 2: %v", err)
	}
	if _, err := (Closing{Scheme: 2, ChainID: 1, Balance: big.NewInt(1)}).Hash(); !errors.Is(err, ErrScheme) {
		t.Errorf("closing scheme 2: %v", err)
	}
	if _, err := (CloseRequest{Scheme: 2, ChainID: 1, Balance: big.NewInt(1), Expires: 1}).Hash(); !errors.Is(err, ErrScheme) {
		t.Errorf("close request scheme 2: %v", err)
	}
}

// The typed close request's expiry is judged as the legacy one's.
func TestTypedCloseRequestExpiry(t *testing.T) {
	now := time.Unix(1_767_225_000, 0)
	for expires, want := range map[int64]error{
		now.Unix():       ErrCloseRequestExpired,
		now.Unix() + 600: nil,
		now.Unix() + 601: ErrCloseRequestTooLong,
	} {
		if err := (CloseRequest{Scheme: SchemeTyped, Expires: expires}).CheckExpiry(now); !errors.Is(err, want) {
			t.Errorf("expires %+d s: %v, want %v", expires-now.Unix(), err, want)
		}
	}
}

func TestSchemeNames(t *testing.T) {
	for _, s := range Schemes {
		text, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Scheme
		if err := back.UnmarshalText(text); err != nil || back != s {
			t.Errorf("%s: round trip gives %s, %v", s, back, err)
		}
	}
	if SchemeLegacy.String() != "legacy" || SchemeTyped.String() != "eip712" {
		t.Errorf("wire names %q, %q", SchemeLegacy, SchemeTyped)
	}
	var zero Scheme
	if zero != SchemeLegacy {
		t.Error("the zero scheme is not legacy: proofs that name none would change meaning")
	}
	for _, bad := range []string{"", "EIP712", "eip-712", "Legacy", " legacy", "typed", "v4"} {
		if _, err := ParseScheme(bad); !errors.Is(err, ErrScheme) {
			t.Errorf("ParseScheme(%q): %v", bad, err)
		}
	}
	if _, err := Scheme(2).MarshalText(); !errors.Is(err, ErrScheme) {
		t.Errorf("MarshalText of scheme 2: %v", err)
	}
	if b, err := json.Marshal(struct{ S Scheme }{SchemeTyped}); err != nil || string(b) != `{"S":"eip712"}` {
		t.Errorf("JSON %s, %v", b, err)
	}
}
