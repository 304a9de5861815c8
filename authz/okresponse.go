package authz

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/uraiden/uraiden/rdn"
)

// The OK answer is built on every paid request, so it is built in one allocation (okParts)
// with the headers that never change shared between answers. Answers are only read once
// built (marshalled by gRPC, read by the gateway and the HTTP mode), which protobuf messages
// allow from several goroutines at once.

// What an allowed request must not take to the upstream:
//
//   - the x-rdn-* headers, which the upstream trusts: a client must never send them itself.
//     A paid answer overwrites them (Headers); a free one removes them.
//   - the balance proof: every RDN-* header of the protocol, and the RDN-* cookies of the
//     browser paywall. The upstream has no use for a proof, and one in its logs would hand
//     the sender's signature to whoever reads them.
//
// Envoy applies an OK answer's Headers first and its HeadersToRemove after, so a header set
// must never be listed for removal. It cannot remove one cookie of the cookie header, only
// overwrite the whole header (or remove it): a request with RDN-* cookies gets its cookie
// line again without them. Envoy cannot remove a header by prefix either: the protocol's
// names are listed one by one.
var (
	// proofHeaders are the protocol's request and response header names, lower-cased.
	proofHeaders = []string{
		"rdn-balance-signature", "rdn-balance", "rdn-sender-balance", "rdn-sender-address", "rdn-open-block",
		"rdn-contract-address", "rdn-receiver-address", "rdn-payment", "rdn-price", "rdn-token-address",
		"rdn-gateway-path", "rdn-insufficient-confirmations", "rdn-nonexisting-channel",
		"rdn-invalid-balance-proof", "rdn-invalid-amount", "rdn-insufficient-deposit",
		"rdn-proof-scheme", "rdn-proof-schemes",
	}
	upstreamHeaders = []string{UpstreamSender, UpstreamOpenBlock, UpstreamPrice, UpstreamRetry}

	removedFree          = concat(upstreamHeaders, proofHeaders)
	removedFreeCookie    = concat(removedFree, []string{"cookie"})
	removedPaid          = concat(proofHeaders, []string{UpstreamRetry})
	removedPaidCookie    = concat(removedPaid, []string{"cookie"})
	removedRetried       = proofHeaders
	removedRetriedCookie = concat(proofHeaders, []string{"cookie"})
)

// paidRemovals lists what a paid answer removes: the proof, x-rdn-retry unless this answer
// sets it, and the cookie header when nothing but the paywall's cookies was in it.
func paidRemovals(retried, dropCookie bool) []string {
	switch {
	case retried && dropCookie:
		return removedRetriedCookie
	case retried:
		return removedRetried
	case dropCookie:
		return removedPaidCookie
	}
	return removedPaid
}

func concat(a, b []string) []string { return append(append([]string(nil), a...), b...) }

// freeResponse is the answer to every allowed request that paid nothing and carries no
// RDN-* cookie.
var freeResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(codes.OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{HeadersToRemove: removedFree}},
}

// freeCookieResponse answers a free request whose cookies included the paywall's: its
// cookie line without them, or no cookie header when nothing else was left.
func freeCookieResponse(d *Decision) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{HeadersToRemove: removedFreeCookie}
	if d.cookie != "" {
		ok.HeadersToRemove = removedFree
		ok.Headers = []*corev3.HeaderValueOption{header("cookie", d.cookie)}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// fixedHeaders are the response headers of a paid answer that are the same for every one.
type fixedHeaders struct{ gateway, token, receiver, contract *corev3.HeaderValueOption }

func newFixedHeaders(c *Config) *fixedHeaders {
	a := c.addresses()
	return &fixedHeaders{
		gateway:  header(rdn.HeaderGatewayPath, c.GatewayPath),
		token:    header(rdn.HeaderTokenAddress, a.token),
		receiver: header(rdn.HeaderReceiverAddress, a.receiver),
		contract: header(rdn.HeaderContractAddress, a.contract),
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

	options  [8]corev3.HeaderValueOption
	values   [8]corev3.HeaderValue
	upstream [5]*corev3.HeaderValueOption
	client   [7]*corev3.HeaderValueOption

	meta      structpb.Struct
	ns        structpb.Struct
	nsValue   structpb.Value
	nsKind    structpb.Value_StructValue
	fields    [6]structpb.Value
	strings   [6]structpb.Value_StringValue
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
		if d.stripCookie {
			return freeCookieResponse(d)
		}
		return freeResponse // no payment headers, no cookie to rewrite
	}
	ch, fixed := d.Channel, c.fixedHeaders()
	openBlock := strconv.FormatUint(uint64(ch.OpenBlock), 10)
	sender, price := ch.Sender.Hex(), d.Price.String()

	p := new(okParts)
	p.status.Code = int32(codes.OK)
	p.ok.HeadersToRemove = paidRemovals(d.retried, d.stripCookie && d.cookie == "")
	p.upstream = [5]*corev3.HeaderValueOption{
		p.header(0, UpstreamSender, sender),
		p.header(1, UpstreamOpenBlock, openBlock),
		p.header(2, UpstreamPrice, price),
	}
	n := 3
	if d.retried {
		p.upstream[n] = p.header(7, UpstreamRetry, "1")
		n++
	}
	if d.stripCookie && d.cookie != "" {
		p.upstream[n] = p.header(6, "cookie", d.cookie)
		n++
	}
	p.ok.Headers = p.upstream[:n]
	p.client = [7]*corev3.HeaderValueOption{
		fixed.gateway,
		fixed.token,
		p.header(3, rdn.HeaderPrice, price),
		p.header(4, rdn.HeaderSenderAddress, sender),
		p.header(5, rdn.HeaderSenderBalance, ch.Balance.String()),
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
	if d.retried {
		p.ns.Fields["retry"] = p.str("1")
	}
	p.nsKind.StructValue = &p.ns
	p.nsValue.Kind = &p.nsKind
	p.meta.Fields = map[string]*structpb.Value{MetadataNamespace: &p.nsValue}
	p.wrap.OkResponse = &p.ok
	p.resp.Status, p.resp.HttpResponse, p.resp.DynamicMetadata = &p.status, &p.wrap, &p.meta
	return &p.resp
}
