package authz

import (
	"encoding/json"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// Headers added to the request sent upstream on a paid request, saying who paid what.
const (
	UpstreamSender    = "x-rdn-sender"
	UpstreamOpenBlock = "x-rdn-open-block"
	UpstreamPrice     = "x-rdn-price"
)

// MetadataNamespace is where the decision is published in dynamic_metadata for later filters
// and access logs.
const MetadataNamespace = "uraiden"

// addressHex are the service's own addresses in their checksummed hex form, which costs a
// keccak256 each to compute.
type addressHex struct{ receiver, contract, token string }

func newAddressHex(c *Config) *addressHex {
	return &addressHex{receiver: c.Receiver.Hex(), contract: c.Contract.Hex(), token: c.Token.Hex()}
}

// addresses returns the hex forms computed once by NewService (or now, for a Config used
// without it).
func (c *Config) addresses() *addressHex {
	if c.hex != nil {
		return c.hex
	}
	return newAddressHex(c)
}

// checkResponse maps a decision to what Envoy expects.
func (c *Config) checkResponse(d *Decision) *authv3.CheckResponse {
	if d.Allowed() {
		return c.okResponse(d)
	}
	return c.deniedResponse(d)
}

func (c *Config) okResponse(d *Decision) *authv3.CheckResponse {
	// The upstream trusts x-rdn-*: never pass on what a client sent itself.
	ok := &authv3.OkHttpResponse{HeadersToRemove: []string{UpstreamSender, UpstreamOpenBlock, UpstreamPrice}}
	resp := &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
	if d.Channel == nil || d.Channel.Paid == nil {
		return resp // free: no payment headers
	}
	ch := d.Channel
	openBlock := strconv.FormatUint(uint64(ch.OpenBlock), 10)
	sender, price, addrs := ch.Sender.Hex(), d.Price.String(), c.addresses()
	ok.Headers = []*corev3.HeaderValueOption{
		header(UpstreamSender, sender),
		header(UpstreamOpenBlock, openBlock),
		header(UpstreamPrice, price),
	}
	ok.ResponseHeadersToAdd = []*corev3.HeaderValueOption{
		header(HeaderGatewayPath, c.GatewayPath),
		header(HeaderTokenAddress, addrs.token),
		header(HeaderPrice, price),
		header(HeaderSenderAddress, sender),
		header(HeaderSenderBalance, ch.Balance.String()),
		header(HeaderReceiverAddress, addrs.receiver),
		header(HeaderContractAddress, addrs.contract),
	}
	resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
		MetadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"sender":     structpb.NewStringValue(sender),
			"open_block": structpb.NewStringValue(openBlock),
			"price":      structpb.NewStringValue(price),
			"balance":    structpb.NewStringValue(ch.Paid.String()),
			"rule":       structpb.NewStringValue(d.Rule),
		}}),
	}}
	return resp
}

// paymentBody is the JSON body of a denial: what to pay, or what went wrong.
type paymentBody struct {
	Error           string `json:"error"`
	Price           string `json:"price,omitempty"`
	ReceiverAddress string `json:"receiver_address,omitempty"`
	ContractAddress string `json:"contract_address,omitempty"`
	TokenAddress    string `json:"token_address,omitempty"`
	GatewayPath     string `json:"gateway_path,omitempty"`
	SenderAddress   string `json:"sender_address,omitempty"`
	OpenBlock       uint32 `json:"open_block,omitempty"`
	SenderBalance   string `json:"sender_balance,omitempty"`
	Signature       string `json:"balance_signature,omitempty"`
	Flag            string `json:"flag,omitempty"`
}

func (c *Config) deniedResponse(d *Decision) *authv3.CheckResponse {
	body := paymentBody{Error: d.Message, Flag: d.Flag}
	headers := []*corev3.HeaderValueOption{
		header("Content-Type", "application/json"),
		header("Cache-Control", "no-store"),
	}
	if d.Status == 402 {
		addrs := c.addresses()
		body.Price, body.ReceiverAddress, body.ContractAddress, body.TokenAddress, body.GatewayPath =
			d.Price.String(), addrs.receiver, addrs.contract, addrs.token, c.GatewayPath
		headers = append(headers,
			header(HeaderGatewayPath, c.GatewayPath),
			header(HeaderReceiverAddress, body.ReceiverAddress),
			header(HeaderContractAddress, body.ContractAddress),
			header(HeaderTokenAddress, body.TokenAddress),
			header(HeaderPrice, body.Price),
		)
		if d.Flag != "" {
			headers = append(headers, header(d.Flag, "1"))
		}
		if ch := d.Channel; ch != nil {
			body.SenderAddress, body.OpenBlock, body.SenderBalance = ch.Sender.Hex(), ch.OpenBlock, ch.Balance.String()
			headers = append(headers,
				header(HeaderSenderAddress, body.SenderAddress),
				header(HeaderSenderBalance, body.SenderBalance))
			if ch.Balance.Sign() > 0 {
				body.Signature = ch.Signature.Hex()
				headers = append(headers, header(HeaderBalanceSignature, body.Signature))
			}
		}
	}
	data, _ := json.Marshal(body)
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(d.Status)), Message: d.Message},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    string(data),
		}},
	}
}

// grpcCode is what gRPC clients of a paid API see instead of the HTTP status.
func grpcCode(status int) codes.Code {
	switch status {
	case 402, 409:
		return codes.PermissionDenied
	case 502, 503:
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

func header(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
