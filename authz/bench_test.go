package authz

import (
	"math/big"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ethereum/go-ethereum/common"
)

// paidHeaders are the headers Envoy sends for a paid GET, as a map with lower-cased keys.
func paidHeaders() map[string]string {
	return map[string]string{
		":authority": "localhost:10000", ":method": "GET", ":path": "/echofix/foo?x=1", ":scheme": "http",
		"accept": "*/*", "user-agent": "bench", "x-request-id": "7c1f9d3e-1111-4b5b-9c1e-0123456789ab",
		"rdn-contract-address":  "0x1440317CB15499083dEE3dDf49C2bD51D0d92e33",
		"rdn-receiver-address":  "0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd",
		"rdn-sender-address":    "0x8Bf640A099fE945DA46F354d3B49c48a125F48B6",
		"rdn-open-block":        "315123",
		"rdn-balance":           "1000000000000000000",
		"rdn-balance-signature": "0x0adc437691e266072e9aa1763329062a6b2fa1d7f94034f1b1e691218fe9fd285f4f20132fa00230f591571a3575456bb382040e02e93ff0f32544907748a9821c",
	}
}

// go test -bench ReadPayment -benchmem ./authz
func BenchmarkReadPayment(b *testing.B) {
	headers := paidHeaders()
	b.ReportAllocs()
	for b.Loop() {
		if p, err := readPayment(headers); err != nil || p == nil {
			b.Fatal(err)
		}
	}
}

func benchConfig() *Config {
	c := &Config{
		Receiver:    common.HexToAddress("0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd"),
		Contract:    common.HexToAddress("0x1440317CB15499083dEE3dDf49C2bD51D0d92e33"),
		Token:       common.HexToAddress("0x0f5D2fB29fb7d3CFeE444a200298f468908cC942"),
		GatewayPath: "/api/1",
	}
	c.hex = newAddressHex(c) // as NewService does
	c.fixed = newFixedHeaders(c)
	return c
}

// go test -bench Response -benchmem ./authz: building the answer to a paid request and to
// a request without a proof.
func BenchmarkResponsePaid(b *testing.B) {
	c := benchConfig()
	d := &Decision{Status: 200, Price: big.NewInt(5), Rule: "echofix", Channel: &ChannelState{
		Sender: common.HexToAddress("0x8Bf640A099fE945DA46F354d3B49c48a125F48B6"), OpenBlock: 315123,
		Balance: big.NewInt(1000), Paid: big.NewInt(1000),
	}}
	b.ReportAllocs()
	for b.Loop() {
		if resp := c.checkResponse(d); resp.GetOkResponse() == nil {
			b.Fatal("not OK")
		}
	}
}

func BenchmarkResponseQuote(b *testing.B) {
	c := benchConfig()
	d := &Decision{Status: 402, Message: "payment required", Price: big.NewInt(5), Rule: "echofix", quote: true}
	b.ReportAllocs()
	for b.Loop() {
		if resp := c.checkResponse(d); resp.GetDeniedResponse() == nil {
			b.Fatal("not denied")
		}
	}
}

// go test -bench FromCheckRequest -benchmem ./authz: reading Envoy's CheckRequest, with the
// headers as a map (the default) and as header_map (encode_raw_headers).
func BenchmarkFromCheckRequest(b *testing.B) {
	headers := paidHeaders()
	asMap := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/echofix/foo?x=1", Host: "localhost:10000", Headers: headers},
	}}}
	raw := &corev3.HeaderMap{}
	for k, v := range headers {
		raw.Headers = append(raw.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	asRaw := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/echofix/foo?x=1", Host: "localhost:10000", HeaderMap: raw},
	}}}
	for name, req := range map[string]*authv3.CheckRequest{"headers": asMap, "header_map": asRaw} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := fromCheckRequest(req)
				if err != nil || r.pricing.Path != "/echofix/foo" || len(r.headers) != len(headers) {
					b.Fatal(err, r.pricing.Path)
				}
			}
		})
	}
}
