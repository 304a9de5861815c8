//go:build !vtprotobuf

package checkcodec

import (
	"errors"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// VTMarshal tells whether CheckResponses are encoded by go-control-plane's generated code,
// which exists only under the vtprotobuf build tag; without it they go to the proto codec.
const VTMarshal = false

func sizeResponse(*authv3.CheckResponse) int { return 0 }

func marshalResponse(*authv3.CheckResponse, []byte) error {
	return errors.New("marshal CheckResponse: built without the vtprotobuf tag")
}
