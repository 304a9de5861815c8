// Package checkcodec is the gRPC codec of uraiden's authorization server. It decodes a
// CheckRequest partially, only the fields uraiden reads, and encodes a CheckResponse with
// go-control-plane's generated marshaller; every other message goes to gRPC's proto codec.
// Both of the standard codec's paths walk the message by reflection: for a CheckRequest
// they also decode, and allocate, what uraiden never reads (peers, TLS, metadata, one
// string per header key and value). The package also sizes the server's stream workers
// (StreamWorkers), the other per-call cost gRPC leaves to its user.
package checkcodec

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Codec is a grpc encoding.CodecV2. Use it on the authorization server only
// (ServerOption): a client or a server of other services gains nothing from it.
type Codec struct {
	std encoding.CodecV2
}

// New returns the codec; it needs gRPC's proto codec registered (importing
// google.golang.org/grpc/encoding/proto, as this package does, registers it).
func New() *Codec {
	return &Codec{std: encoding.GetCodecV2(protocodec.Name)}
}

// ServerOption makes a gRPC server use the codec for every call, whatever content-subtype
// the client names: an ext_authz server receives "application/grpc" from Envoy.
func ServerOption() grpc.ServerOption { return grpc.ForceServerCodecV2(New()) }

// streamWorkers is how many goroutines serve Check calls one after another. Without them gRPC
// starts a goroutine per call, whose stack then grows by copying, several times, on every
// call (a fifth of a do-nothing check's server CPU on the bench). 64 covers the checks in
// flight on a busy server (rate × a durable commit's wait); past them gRPC starts a
// goroutine per call again, so a slow ledger never queues checks behind the workers.
const streamWorkers = 64

// StreamWorkers makes a gRPC server serve its calls on streamWorkers reused goroutines.
func StreamWorkers() grpc.ServerOption { return grpc.NumStreamWorkers(streamWorkers) }

// Name is the proto codec's: the wire format is the same.
func (*Codec) Name() string { return protocodec.Name }

// Marshal encodes a CheckResponse with marshalResponse, into a pooled buffer when it is
// large enough for gRPC to pool it.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	resp, ok := v.(*authv3.CheckResponse)
	if !ok || !VTMarshal {
		return c.std.Marshal(v)
	}
	size := sizeResponse(resp)
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if err := marshalResponse(resp, buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if err := marshalResponse(resp, *buf); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes a CheckRequest with Decode; its error makes gRPC answer Internal, as
// the standard codec's does.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*authv3.CheckRequest)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return Decode(buf.ReadOnlyData(), req)
}
