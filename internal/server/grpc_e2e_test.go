package server_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uraiden/uraiden/client"
	"github.com/uraiden/uraiden/internal/gateway"
	"github.com/uraiden/uraiden/rdn"
)

// grpcChecker asks the ext_authz service over a gRPC connection, as Envoy's filter does.
type grpcChecker struct{ authv3.AuthorizationClient }

func (c grpcChecker) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return c.AuthorizationClient.Check(ctx, req)
}

// The whole Envoy path over a real gRPC connection: the client library's request reaches
// the gateway (playing Envoy: CheckRequest out, CheckResponse applied), which asks
// uraiden's gRPC listener; the first attempt is quoted, the paid one answered, and the
// ledger holds the payment.
func TestClientThroughGatewayOverGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chain, srv := startOnDevChain(t, ctx)
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	g, err := gateway.Start(gateway.Config{Listen: "127.0.0.1:0", Authz: grpcChecker{authv3.NewAuthorizationClient(conn)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })

	resp, err := http.Get(g.URL() + "/echodyn/abcd")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// prices.yaml: 0.001 token (10^15 base units) per character.
	const milli = 1_000_000_000_000_000
	if resp.StatusCode != 402 || resp.Header.Get("RDN-Price") != "4000000000000000" {
		t.Fatalf("unpaid: %d, RDN-Price %q", resp.StatusCode, resp.Header.Get("RDN-Price"))
	}

	payer := chain.Accounts()[2]
	c, err := client.New(ctx, client.Config{Node: chain.Client(), Key: payer.Key, Contract: chain.Deployment().Channels})
	if err != nil {
		t.Fatal(err)
	}
	rt := c.Transport(client.TransportConfig{})
	for _, param := range []string{"abcd", "xy"} {
		resp, err := (&http.Client{Transport: rt}).Get(g.URL() + "/echodyn/" + param)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != param || resp.Header.Get("RDN-Sender-Address") != crypto.PubkeyToAddress(payer.Key.PublicKey).Hex() {
			t.Fatalf("paid %s: %d %q %v", param, resp.StatusCode, body, resp.Header)
		}
	}
	if rt.Spent().Int64() != 6*milli {
		t.Errorf("spent %s, want 0.004+0.002 token", rt.Spent())
	}
	chs, err := c.Channels(ctx, nil)
	if err != nil || len(chs) != 1 {
		t.Fatalf("channels %v, %v", chs, err)
	}
	ch, err := srv.Ledger.Channel(rdn.ChannelID{Sender: crypto.PubkeyToAddress(payer.Key.PublicKey), OpenBlock: chs[0].OpenBlock})
	if err != nil || ch == nil || ch.Charged.Int64() != 6*milli {
		t.Errorf("ledger channel %+v, %v; want 0.006 token charged", ch, err)
	}
}
