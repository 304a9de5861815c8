package bench

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/uraiden/uraiden/authz"
)

// benchCheck decides paid checks in process, without gRPC: the server's own cost of a paid
// Check (header parsing, price lookup, proof recovery, ledger). With parallel, 50 goroutines
// share 2 cores as 50 gRPC streams would.
//
//	go test -run - -bench CheckPaid -benchmem ./internal/dev/bench
//
// With a wire codec, each check also goes through the server's side of gRPC's encoding: the
// request is marshalled (the client's share, the same for every codec), decoded by the
// codec, and the answer encoded by it.
func benchCheck(b *testing.B, noSync, parallel bool, wire ...encoding.CodecV2) {
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
			var resp *authv3.CheckResponse
			var err error
			if len(wire) > 0 {
				resp, err = overWire(svc, wire[0], req)
			} else {
				resp, err = svc.Check(context.Background(), req)
			}
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

// BenchmarkCheckPaidParallelNoSyncWire is BenchmarkCheckPaidParallelNoSync through gRPC's
// proto codec and through uraiden's:
//
//	go test -run - -bench CheckPaidParallelNoSyncWire -benchmem -tags vtprotobuf ./internal/dev/bench
func BenchmarkCheckPaidParallelNoSyncWire(b *testing.B) {
	for _, c := range codecs() {
		b.Run(c.name, func(b *testing.B) { benchCheck(b, true, true, c.codec) })
	}
}

// overWire is one Check as the server sees it over gRPC, but for the transport.
func overWire(svc *authz.Service, codec encoding.CodecV2, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	var got authv3.CheckRequest
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
		return nil, err
	}
	resp, err := svc.Check(context.Background(), &got)
	if err != nil {
		return nil, err
	}
	out, err := codec.Marshal(resp)
	if err != nil {
		return nil, err
	}
	out.Free()
	return resp, nil
}
