//go:build vtprotobuf

package checkcodec

import (
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// VTMarshal tells whether CheckResponses are encoded by go-control-plane's generated code,
// which exists only under the vtprotobuf build tag; without it they go to the proto codec.
const VTMarshal = true

func sizeResponse(resp *authv3.CheckResponse) int { return resp.SizeVT() }

// marshalResponse writes resp into buf, sized by sizeResponse, with the strict variant: it
// writes fields in number order, oneofs included, as proto.Marshal does.
func marshalResponse(resp *authv3.CheckResponse, buf []byte) error {
	n, err := resp.MarshalToSizedBufferVTStrict(buf)
	if err != nil {
		return fmt.Errorf("marshal CheckResponse: %w", err)
	}
	if n != len(buf) {
		// The size was computed from the same message: only a concurrent change explains it.
		return fmt.Errorf("marshal CheckResponse: wrote %d bytes of %d", n, len(buf))
	}
	return nil
}
