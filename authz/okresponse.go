package authz

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// The OK answer is built on every paid request, so it is built in one allocation (okParts)
// with the headers that never change shared between answers. Answers are only read once
// built (marshalled by gRPC, read by the gateway and the HTTP mode), which protobuf messages
// allow from several goroutines at once.

// removedUpstream are the x-rdn-* headers removed from every allowed request: the upstream
// trusts them, so a client must never send them itself.
var removedUpstream = []string{UpstreamSender, UpstreamOpenBlock, UpstreamPrice}

// freeResponse is the answer to every allowed request that paid nothing.
var freeResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(codes.OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{HeadersToRemove: removedUpstream}},
}

// fixedHeaders are the response headers of a paid answer that are the same for every one.
type fixedHeaders struct{ gateway, token, receiver, contract *corev3.HeaderValueOption }

func newFixedHeaders(c *Config) *fixedHeaders {
	a := c.addresses()
	return &fixedHeaders{
		gateway:  header(HeaderGatewayPath, c.GatewayPath),
		token:    header(HeaderTokenAddress, a.token),
		receiver: header(HeaderReceiverAddress, a.receiver),
		contract: header(HeaderContractAddress, a.contract),
	}
}

// fixedHeaders returns the headers built once by NewService (or now, for a Config used
// without it).
func (c *Config) fixedHeaders() *fixedHeaders {
	if c.fixed != nil {
		return c.fixed
	}
	return newFixedHeaders(c)
}

// okParts is everything an answer to a paid request holds, but its strings and maps.
type okParts struct {
	resp   authv3.CheckResponse
	wrap   authv3.CheckResponse_OkResponse
	ok     authv3.OkHttpResponse
	status rpcstatus.Status

	options  [6]corev3.HeaderValueOption
	values   [6]corev3.HeaderValue
	upstream [3]*corev3.HeaderValueOption
	client   [7]*corev3.HeaderValueOption

	meta      structpb.Struct
	ns        structpb.Struct
	nsValue   structpb.Value
	nsKind    structpb.Value_StructValue
	fields    [5]structpb.Value
	strings   [5]structpb.Value_StringValue
	nextField int
}

// header sets the i-th header option of the answer.
func (p *okParts) header(i int, key, value string) *corev3.HeaderValueOption {
	p.values[i] = corev3.HeaderValue{Key: key, Value: value}
	o := &p.options[i]
	o.Header, o.AppendAction = &p.values[i], corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	return o
}

// str returns the next metadata string value.
func (p *okParts) str(s string) *structpb.Value {
	i := p.nextField
	p.nextField++
	p.strings[i].StringValue = s
	p.fields[i].Kind = &p.strings[i]
	return &p.fields[i]
}

func (c *Config) okResponse(d *Decision) *authv3.CheckResponse {
	if d.Channel == nil || d.Channel.Paid == nil {
		return freeResponse // no payment headers
	}
	ch, fixed := d.Channel, c.fixedHeaders()
	openBlock := strconv.FormatUint(uint64(ch.OpenBlock), 10)
	sender, price := ch.Sender.Hex(), d.Price.String()

	p := new(okParts)
	p.status.Code = int32(codes.OK)
	p.ok.HeadersToRemove = removedUpstream
	p.upstream = [3]*corev3.HeaderValueOption{
		p.header(0, UpstreamSender, sender),
		p.header(1, UpstreamOpenBlock, openBlock),
		p.header(2, UpstreamPrice, price),
	}
	p.ok.Headers = p.upstream[:]
	p.client = [7]*corev3.HeaderValueOption{
		fixed.gateway,
		fixed.token,
		p.header(3, HeaderPrice, price),
		p.header(4, HeaderSenderAddress, sender),
		p.header(5, HeaderSenderBalance, ch.Balance.String()),
		fixed.receiver,
		fixed.contract,
	}
	p.ok.ResponseHeadersToAdd = p.client[:]
	p.ns.Fields = map[string]*structpb.Value{
		"sender":     p.str(sender),
		"open_block": p.str(openBlock),
		"price":      p.str(price),
		"balance":    p.str(ch.Paid.String()),
		"rule":       p.str(d.Rule),
	}
	p.nsKind.StructValue = &p.ns
	p.nsValue.Kind = &p.nsKind
	p.meta.Fields = map[string]*structpb.Value{MetadataNamespace: &p.nsValue}
	p.wrap.OkResponse = &p.ok
	p.resp.Status, p.resp.HttpResponse, p.resp.DynamicMetadata = &p.status, &p.wrap, &p.meta
	return &p.resp
}
