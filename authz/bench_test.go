package authz

import (
	"testing"
)

// go test -bench ReadPayment -benchmem ./authz
func BenchmarkReadPayment(b *testing.B) {
	headers := map[string]string{
		":authority": "localhost:10000", ":method": "GET", ":path": "/echofix/foo", "accept": "*/*",
		"rdn-contract-address":  "0x1440317CB15499083dEE3dDf49C2bD51D0d92e33",
		"rdn-receiver-address":  "0x08c86B491A37C2FFC25072a17c7A97EF2D0357dd",
		"rdn-sender-address":    "0x8Bf640A099fE945DA46F354d3B49c48a125F48B6",
		"rdn-open-block":        "315123",
		"rdn-balance":           "1000000000000000000",
		"rdn-balance-signature": "0x0adc437691e266072e9aa1763329062a6b2fa1d7f94034f1b1e691218fe9fd285f4f20132fa00230f591571a3575456bb382040e02e93ff0f32544907748a9821c",
	}
	b.ReportAllocs()
	for b.Loop() {
		if p, err := readPayment(headers); err != nil || p == nil {
			b.Fatal(err)
		}
	}
}
