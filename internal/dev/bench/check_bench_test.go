package bench

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
)

// benchCheck decides paid checks in process, without gRPC: the server's own cost of a paid
// Check (header parsing, price lookup, proof recovery, ledger). With parallel, 50 goroutines
// share 2 cores as 50 gRPC streams would.
//
//	go test -run - -bench CheckPaid -benchmem ./internal/dev/bench
func benchCheck(b *testing.B, noSync, parallel bool) {
	const channels = 1000
	fx, err := NewFixture(channels)
	if err != nil {
		b.Fatal(err)
	}
	proofs, err := fx.SignProofs(context.Background(), (b.N+channels-1)/channels)
	if err != nil {
		b.Fatal(err)
	}
	svc, l, err := fx.Service(b.TempDir(), noSync)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	streams := 1
	if parallel {
		streams = 50
	}
	ld := fx.paidLoad(proofs, streams)
	check := func(stream int, n int) {
		req, next := ld.newStream(stream)
		for range n {
			if !next() {
				b.Error("out of proofs")
				return
			}
			resp, err := svc.Check(context.Background(), req)
			if err != nil || resp.GetStatus().GetCode() != int32(codes.OK) {
				b.Errorf("check: %v %v", err, resp.GetDeniedResponse().GetBody())
				return
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	defer func() {
		// CPU time per check, the server's alone (the commits' included): unlike ns/op, it
		// does not depend on how many cores are free.
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}()
	if !parallel {
		check(0, b.N)
		return
	}
	done := make(chan struct{})
	for s := range streams {
		n := b.N / streams
		if s < b.N%streams {
			n++
		}
		go func() { check(s, n); done <- struct{}{} }()
	}
	for range streams {
		<-done
	}
}

func BenchmarkCheckPaidSerialNoSync(b *testing.B)    { benchCheck(b, true, false) }
func BenchmarkCheckPaidParallelNoSync(b *testing.B)  { benchCheck(b, true, true) }
func BenchmarkCheckPaidParallelDurable(b *testing.B) { benchCheck(b, false, true) }
