package authz

import (
	"math/big"
	"slices"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
	"google.golang.org/protobuf/proto"

	"github.com/uraiden/uraiden/rdn"
)

// Paid answers share their fixed headers: building one must not change another, and each
// carries its own payment in headers and metadata.
func TestPaidResponsesAreIndependent(t *testing.T) {
	c := benchConfig()
	paid := func(sender common.Address, balance int64) *authv3.CheckResponse {
		return c.checkResponse(&Decision{Status: 200, Price: big.NewInt(5), Rule: "echofix", Channel: &ChannelState{
			Sender: sender, OpenBlock: 7, Balance: big.NewInt(balance), Paid: big.NewInt(balance),
		}})
	}
	alice, bob := common.HexToAddress("0xa1"), common.HexToAddress("0xb2")
	marshal := proto.MarshalOptions{Deterministic: true}.Marshal // maps in a fixed order
	a := paid(alice, 10)
	before, err := marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	b := paid(bob, 20)
	if after, _ := marshal(a); string(before) != string(after) {
		t.Fatal("building an answer changed an earlier one")
	}
	for name, tc := range map[string]struct {
		sender  common.Address
		balance string
		resp    *authv3.CheckResponse
	}{"a": {alice, "10", a}, "b": {bob, "20", b}} {
		headers := map[string]string{}
		for _, h := range tc.resp.GetOkResponse().GetResponseHeadersToAdd() {
			headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if headers[rdn.HeaderSenderAddress] != tc.sender.Hex() || headers[rdn.HeaderSenderBalance] != tc.balance ||
			headers[rdn.HeaderReceiverAddress] != c.Receiver.Hex() || headers[rdn.HeaderGatewayPath] != "/api/1" {
			t.Errorf("%s: headers %v", name, headers)
		}
		meta := tc.resp.GetDynamicMetadata().GetFields()[MetadataNamespace].GetStructValue().GetFields()
		if meta["sender"].GetStringValue() != tc.sender.Hex() || meta["balance"].GetStringValue() != tc.balance || meta["rule"].GetStringValue() != "echofix" {
			t.Errorf("%s: metadata %v", name, meta)
		}
		// The proof's headers are removed; the x-rdn-* ones are set, and Envoy removes after
		// it sets.
		if removed := tc.resp.GetOkResponse().GetHeadersToRemove(); !slices.Contains(removed, "rdn-balance-signature") || slices.Contains(removed, UpstreamSender) {
			t.Errorf("%s: headers to remove %v", name, removed)
		}
	}
}
