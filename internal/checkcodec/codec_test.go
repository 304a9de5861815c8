package checkcodec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/uraiden/uraiden/internal/checkcodec"
	"github.com/uraiden/uraiden/internal/dev/bench"
)

// answers are uraiden's answers to realistic requests: paid (OK with headers and dynamic
// metadata), a replayed proof and a quote (402), a quote for a browser (402 with the
// paywall's page, large enough for a pooled buffer), a malformed proof (409), a free route.
func answers(t *testing.T) (reqs []*authv3.CheckRequest, resps []*authv3.CheckResponse) {
	t.Helper()
	fx, err := bench.NewFixture(2)
	if err != nil {
		t.Fatal(err)
	}
	svc, l, err := fx.Service(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var file bytes.Buffer
	if _, err := fx.WriteGhz(context.Background(), &file, 2); err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(file.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	paid := new(authv3.CheckRequest)
	if err := protojson.Unmarshal(raw[0], paid); err != nil {
		t.Fatal(err)
	}
	variant := func(change func(h map[string]string)) *authv3.CheckRequest {
		r := proto.Clone(paid).(*authv3.CheckRequest)
		h := r.GetAttributes().GetRequest().GetHttp()
		h.Headers = maps.Clone(h.Headers)
		change(h.Headers)
		return r
	}
	noProof := func(h map[string]string) {
		for k := range h {
			if strings.HasPrefix(k, "rdn-") {
				delete(h, k)
			}
		}
	}
	reqs = []*authv3.CheckRequest{
		paid, paid, variant(noProof),
		variant(func(h map[string]string) { noProof(h); h["accept"] = "text/html" }),
		variant(func(h map[string]string) { h["rdn-balance"] = "x" }),
		variant(func(h map[string]string) { h[":path"] = "/free" }),
	}
	for _, r := range reqs {
		resp, err := svc.Check(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, proto.Clone(resp).(*authv3.CheckResponse))
	}
	if resps[0].GetStatus().GetCode() != 0 || len(resps[0].GetDynamicMetadata().GetFields()) == 0 {
		t.Fatalf("the paid answer is not an OK with metadata: %v", resps[0])
	}
	return reqs, resps
}

// TestMarshalResponse: the codec's encoding of uraiden's answers decodes to the same
// message as proto.Marshal's, at the same length (map order may differ, not content).
func TestMarshalResponse(t *testing.T) {
	t.Logf("generated marshaller in use: %v", checkcodec.VTMarshal)
	c := checkcodec.New()
	_, resps := answers(t)
	pooled := false
	for i, resp := range resps {
		data, err := c.Marshal(resp)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		got := data.Materialize()
		if !mem.IsBelowBufferPoolingThreshold(len(got)) {
			pooled = true
		}
		data.Free()
		want, err := proto.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		var back authv3.CheckResponse
		if err := proto.Unmarshal(got, &back); err != nil {
			t.Fatalf("answer %d: the codec's bytes do not decode: %v", i, err)
		}
		if len(got) != len(want) || !proto.Equal(&back, resp) {
			t.Fatalf("answer %d: %d bytes decoding to\n%v\nproto.Marshal: %d bytes of\n%v", i, len(got), &back, len(want), resp)
		}
	}
	if !pooled {
		t.Fatal("no answer was large enough for a pooled buffer: that path is untested")
	}
}

// TestUnmarshalSplit decodes a request that arrives in several buffers, as gRPC hands over a
// message read in several frames.
func TestUnmarshalSplit(t *testing.T) {
	reqs, _ := answers(t)
	b, err := proto.Marshal(reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	var data mem.BufferSlice
	for part := range slicesOf(b, 7) {
		data = append(data, mem.SliceBuffer(part))
	}
	var got authv3.CheckRequest
	if err := checkcodec.New().Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(reqs[0].GetAttributes().GetRequest().GetHttp()).(*authv3.AttributeContext_HttpRequest)
	want.Protocol = "" // not read, not decoded
	if !proto.Equal(got.GetAttributes().GetRequest().GetHttp(), want) {
		t.Fatalf("decoded %v, want %v", got.GetAttributes().GetRequest().GetHttp(), want)
	}
}

func slicesOf(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// rawCodec sends bytes as they are: a client of malformed requests.
type rawCodec struct{ encoding.CodecV2 }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

// TestOverGRPC: a server with the codec answers a CheckRequest, refuses invalid bytes with
// the code the standard codec's server gives them (Internal), and serves other services
// (health) through the standard codec.
func TestOverGRPC(t *testing.T) {
	reqs, resps := answers(t)
	invalid := []byte{0x0a, 0x05, 0x00} // attributes longer than the message
	var standardCode codes.Code
	for _, withCodec := range []bool{false, true} {
		var opts []grpc.ServerOption
		if withCodec {
			opts = append(opts, checkcodec.ServerOption())
		}
		conn := serve(t, resps[5], opts...)
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), reqs[5])
		if err != nil || !proto.Equal(resp, resps[5]) {
			t.Fatalf("codec %v: %v, %v", withCodec, resp, err)
		}
		var out []byte
		err = conn.Invoke(context.Background(), "/envoy.service.auth.v3.Authorization/Check", &invalid, &out,
			grpc.ForceCodecV2(rawCodec{encoding.GetCodecV2(protocodec.Name)}))
		code := status.Code(err)
		if !withCodec {
			standardCode = code
		} else if code != standardCode || code != codes.Internal {
			t.Fatalf("invalid request: %v with the codec, %v without", err, standardCode)
		}
		h, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("codec %v: health %v, %v", withCodec, h, err)
		}
	}
}

// fixedAnswer answers every Check with the free route's answer of answers.
type fixedAnswer struct {
	authv3.UnimplementedAuthorizationServer
	resp *authv3.CheckResponse
}

func (f fixedAnswer) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	if req.GetAttributes().GetRequest().GetHttp().GetHeaders()[":path"] != "/free" {
		return nil, errors.New("not the request sent")
	}
	return f.resp, nil
}

func serve(t *testing.T, resp *authv3.CheckResponse, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(s, fixedAnswer{resp: resp})
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// blockingAnswer holds every Check until release is closed, counting the calls it holds.
type blockingAnswer struct {
	authv3.UnimplementedAuthorizationServer
	held    chan struct{}
	release chan struct{}
}

func (b blockingAnswer) Check(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	b.held <- struct{}{}
	select {
	case <-b.release:
		return &authv3.CheckResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestStreamWorkersNeverQueue: with every stream worker busy (checks waiting on a slow ledger),
// further checks still run at once instead of waiting for a worker.
func TestStreamWorkersNeverQueue(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(checkcodec.StreamWorkers(), checkcodec.ServerOption())
	b := blockingAnswer{held: make(chan struct{}), release: make(chan struct{})}
	authv3.RegisterAuthorizationServer(s, b)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const calls = 3 * 64 // three times the workers
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{})
			errs <- err
		}()
	}
	for i := range calls {
		select {
		case <-b.held:
		case <-ctx.Done():
			t.Fatalf("%d checks running at once, then none: the rest wait for a worker", i)
		}
	}
	close(b.release)
	for range calls {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
