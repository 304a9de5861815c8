package bench

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/uraiden/uraiden/internal/checkcodec"
)

type namedCodec struct {
	name  string
	codec encoding.CodecV2
}

func codecs() []namedCodec {
	return []namedCodec{
		{"standard", encoding.GetCodecV2(protocodec.Name)},
		{"uraiden", checkcodec.New()},
	}
}

// BenchmarkCodec decodes the bench's paid CheckRequest and encodes uraiden's OK answer to it,
// with gRPC's proto codec and with uraiden's. The answer is encoded by go-control-plane's
// generated code only under the vtprotobuf tag:
//
//	go test -run - -bench Codec -benchmem -tags vtprotobuf ./internal/dev/bench
func BenchmarkCodec(b *testing.B) {
	fx, err := NewFixture(1)
	if err != nil {
		b.Fatal(err)
	}
	proofs, err := fx.SignProofs(context.Background(), 1)
	if err != nil {
		b.Fatal(err)
	}
	svc, l, err := fx.Service(b.TempDir(), true)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	req, next := fx.paidLoad(proofs, 1).newStream(0)
	next()
	resp, err := svc.Check(context.Background(), req)
	if err != nil || resp.GetStatus().GetCode() != 0 {
		b.Fatalf("the paid check failed: %v %v", err, resp)
	}
	wire, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	decode := func(c encoding.CodecV2) {
		var got authv3.CheckRequest
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, &got); err != nil {
			b.Fatal(err)
		}
	}
	encode := func(c encoding.CodecV2) {
		out, err := c.Marshal(resp)
		if err != nil {
			b.Fatal(err)
		}
		out.Free()
	}
	for _, c := range codecs() {
		for _, step := range []struct {
			name string
			run  func(encoding.CodecV2)
		}{{"decode", decode}, {"encode", encode}, {"both", func(c encoding.CodecV2) { decode(c); encode(c) }}} {
			b.Run(step.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					step.run(c.codec)
				}
				// The garbage collector's share included; unlike ns/op, hardly moved by the
				// other jobs on the machine.
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
