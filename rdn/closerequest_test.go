package rdn

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// knownCloseRequest is the close request of docs/protocol.md §6's example: sender 0xa0…a0's key,
// receiver 0xb1…b1's address, the original mainnet contract, chain 1.
func knownCloseRequest(t *testing.T) (CloseRequest, *big.Int) {
	d, sender := repeatedKey(t, 0xa0)
	return CloseRequest{Receiver: receiverB1, Contract: mainnetContract, ChainID: 1, Sender: sender,
		OpenBlock: 315123, Balance: big.NewInt(8), Expires: 1767225600}, d
}

func TestCloseRequestKnownAnswer(t *testing.T) {
	c, d := knownCloseRequest(t)
	text, err := c.Text()
	if err != nil {
		t.Fatal(err)
	}
	const wantText = "uraiden cooperative close request\n" +
		"receiver: 0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd\n" +
		"contract: 0x1440317CB15499083dEE3dDf49C2bD51D0d92e33\n" +
		"chain id: 1\n" +
		"sender: 0x8Bf640A099fE945DA46F354d3B49c48a125F48B6\n" +
		"open block: 315123\n" +
		"balance: 8\n" +
		"expires: 1767225600"
	if text != wantText {
		t.Errorf("text\n got %q\nwant %q", text, wantText)
	}
	h, err := c.Hash()
	if err != nil {
		t.Fatal(err)
	}
	// go-ethereum's own EIP-191 hash, and the value docs/protocol.md §6 gives.
	if want := common.BytesToHash(accounts.TextHash([]byte(wantText))); h != want {
		t.Errorf("hash %s, accounts.TextHash gives %s", h, want)
	}
	if h.Hex() != "0x0e9910ef488d52272ce54847b4a4a8e4e9aca66198fa1aee495586abeddab422" {
		t.Errorf("hash %s", h)
	}
	key, _ := crypto.ToECDSA(d.FillBytes(make([]byte, 32)))
	sig, err := c.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	const wantSig = "0x683f58eff6c80f011d7f750c22056850e069c77931e5b13f981ca3f92782ef241ccf9f8c02e75a1c929adf7e9043213726493666b9be37938dd4d02b2cecdb5e1b"
	if sig.Hex() != wantSig {
		t.Errorf("signature %s", sig)
	}
	if signer, err := c.Signer(sig[:]); err != nil || signer != c.Sender {
		t.Errorf("signer %s, %v", signer, err)
	}
}

// Every field is bound: a change of any one recovers another address. A balance proof for
// the same channel and balance is not a close request.
func TestCloseRequestBindsEveryField(t *testing.T) {
	c, d := knownCloseRequest(t)
	key, _ := crypto.ToECDSA(d.FillBytes(make([]byte, 32)))
	sig, err := c.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	other := common.HexToAddress("0x00000000000000000000000000000000000000ff")
	for name, change := range map[string]func(*CloseRequest){
		"receiver":   func(c *CloseRequest) { c.Receiver = other },
		"contract":   func(c *CloseRequest) { c.Contract = other },
		"chain id":   func(c *CloseRequest) { c.ChainID = 5 },
		"sender":     func(c *CloseRequest) { c.Sender = other },
		"open block": func(c *CloseRequest) { c.OpenBlock++ },
		"balance":    func(c *CloseRequest) { c.Balance = big.NewInt(9) },
		"expires":    func(c *CloseRequest) { c.Expires++ },
	} {
		changed := c
		change(&changed)
		if signer, err := changed.Signer(sig[:]); err == nil && signer == c.Sender {
			t.Errorf("%s changed: the signature still recovers to the sender", name)
		}
	}
	bp, err := Balance{Receiver: c.Receiver, OpenBlock: c.OpenBlock, Balance: c.Balance, Contract: c.Contract}.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	if signer, err := c.Signer(bp[:]); err == nil && signer == c.Sender {
		t.Error("the balance proof passes as a close request")
	}
	if _, err := (CloseRequest{Balance: big.NewInt(-1), Expires: 1}).Hash(); !errors.Is(err, ErrBalanceRange) {
		t.Errorf("negative balance: %v", err)
	}
	if _, err := (CloseRequest{Balance: big.NewInt(1)}).Hash(); err == nil {
		t.Error("no expiry: hashed")
	}
}

func TestCloseRequestExpiry(t *testing.T) {
	now := time.Unix(1_767_225_000, 0)
	for expires, want := range map[int64]error{
		now.Unix() - 1:   ErrCloseRequestExpired,
		now.Unix():       ErrCloseRequestExpired,
		now.Unix() + 1:   nil,
		now.Unix() + 600: nil,
		now.Unix() + 601: ErrCloseRequestTooLong,
	} {
		if err := (CloseRequest{Expires: expires}).CheckExpiry(now); !errors.Is(err, want) {
			t.Errorf("expires %+d s: %v, want %v", expires-now.Unix(), err, want)
		}
	}
}
