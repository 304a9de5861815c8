package authz

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/ethereum/go-ethereum/common"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"

	"github.com/uraiden/uraiden/authz/paywall"
	"github.com/uraiden/uraiden/rdn"
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
	// ProofScheme is Signature's scheme.
	ProofScheme  string        `json:"proof_scheme,omitempty"`
	Flag         string        `json:"flag,omitempty"`
	ProofSchemes []string      `json:"proof_schemes,omitempty"`
	EIP712Domain *eip712Domain `json:"eip712_domain,omitempty"`
}

func (c *Config) deniedResponse(d *Decision) *authv3.CheckResponse {
	body := paymentBody{Error: d.Message, Flag: d.Flag}
	var protocol []*corev3.HeaderValueOption // the protocol's headers, mirrored into cookies for a browser
	var offered *corev3.HeaderValueOption    // not mirrored into a cookie: the paywall page carries it
	if d.Status == 402 {
		addrs, offer := c.addresses(), c.offer()
		body.Price, body.ReceiverAddress, body.ContractAddress, body.TokenAddress, body.GatewayPath =
			d.Price.String(), addrs.receiver, addrs.contract, addrs.token, c.GatewayPath
		body.ProofSchemes, body.EIP712Domain, offered = offer.names, offer.body, offer.hv
		protocol = append(protocol,
			header(rdn.HeaderGatewayPath, c.GatewayPath),
			header(rdn.HeaderReceiverAddress, body.ReceiverAddress),
			header(rdn.HeaderContractAddress, body.ContractAddress),
			header(rdn.HeaderTokenAddress, body.TokenAddress),
			header(rdn.HeaderPrice, body.Price),
		)
		if d.Flag != "" {
			protocol = append(protocol, header(d.Flag, "1"))
		}
		if ch := d.Channel; ch != nil {
			body.SenderAddress, body.OpenBlock, body.SenderBalance = ch.Sender.Hex(), ch.OpenBlock, ch.Balance.String()
			protocol = append(protocol,
				header(rdn.HeaderSenderAddress, body.SenderAddress),
				header(rdn.HeaderSenderBalance, body.SenderBalance))
			if ch.Balance.Sign() > 0 {
				body.Signature, body.ProofScheme = ch.Signature.Hex(), ch.Scheme.String()
				protocol = append(protocol, header(rdn.HeaderBalanceSignature, body.Signature),
					header(rdn.HeaderProofScheme, body.ProofScheme))
			}
		}
	}
	headers := append([]*corev3.HeaderValueOption{header("Cache-Control", "no-store")}, protocol...)
	if offered != nil {
		headers = append(headers, offered)
	}
	var text string
	if page, ok := c.paywallPage(d, &body); ok {
		headers = append(headers, c.paywallHeaders(d.browser, protocol)...)
		text = page
	} else {
		headers = append(headers, header("Content-Type", "application/json"))
		data, _ := json.Marshal(body)
		text = string(data)
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(d.Status)), Message: d.Message},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    text,
		}},
	}
}

// paywallPage renders the HTML paywall for a denial to a browser; false for any other
// client (or should rendering fail: the JSON body still says what to pay).
func (c *Config) paywallPage(d *Decision, body *paymentBody) (string, bool) {
	if d.browser == nil {
		return "", false
	}
	page := paywall.Page{
		Status: d.Status, Flag: d.Flag, Message: d.Message, Price: body.Price,
		Receiver: body.ReceiverAddress, Contract: body.ContractAddress, Token: body.TokenAddress,
		ChainID: c.ChainID, GatewayPath: c.GatewayPath,
		Sender: body.SenderAddress, OpenBlock: body.OpenBlock, SenderBalance: body.SenderBalance,
		ProofSchemes: c.offer().names,
	}
	if d.Status != 402 { // a 409 has no quote in it: the page still needs the addresses
		addrs := c.addresses()
		page.Receiver, page.Contract, page.Token, page.Price = addrs.receiver, addrs.contract, addrs.token, d.Price.String()
	}
	html, err := paywall.Render(page)
	return html, err == nil
}

// paywallHeaders are the headers of the HTML paywall: its type and content policy, and each
// RDN-* header mirrored into a cookie (docs/protocol.md §3), as µRaiden's paywall expects. Envoy
// sends several Set-Cookie headers when each one is appended. A name this denial does not
// carry is expired: a stale flag would mislead the page, and the server's last balance
// (RDN-Sender-Balance) must never sit beside a signature for another balance.
func (c *Config) paywallHeaders(b *browser, protocol []*corev3.HeaderValueOption) []*corev3.HeaderValueOption {
	out := []*corev3.HeaderValueOption{
		header("Content-Type", "text/html; charset=utf-8"),
		header("Content-Security-Policy", paywall.ContentSecurityPolicy),
		header("X-Content-Type-Options", "nosniff"),
	}
	sent := make(map[string]string, len(protocol))
	for _, h := range protocol {
		sent[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	for _, name := range rdn.Cookies {
		cookie := http.Cookie{Name: name, Path: "/", SameSite: http.SameSiteLaxMode, Secure: b.https}
		if v, ok := sent[name]; ok {
			cookie.Value = v
		} else {
			cookie.MaxAge = -1 // Max-Age=0: delete
		}
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: "Set-Cookie", Value: cookie.String()},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

// grpcCode is what gRPC clients of a paid API see instead of the HTTP status.
func grpcCode(status int) codes.Code {
	switch status {
	case 400:
		return codes.InvalidArgument
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

// denialRecord is what deniedResponse reads of a Decision, carried from nginx's auth
// subrequest to its denial request (NginxDenialHeader) so that the denial is rendered from
// the first decision, never decided again. Compact: the rendered page would not fit in a
// header nginx reads.
type denialRecord struct {
	Status    int        `json:"s"`
	Flag      string     `json:"f,omitempty"`
	Message   string     `json:"m,omitempty"`
	Price     string     `json:"p,omitempty"`
	Rule      string     `json:"r,omitempty"`
	Sender    string     `json:"a,omitempty"` // the channel shown, when set
	OpenBlock uint32     `json:"o,omitempty"`
	Balance   string     `json:"b,omitempty"`
	Signature string     `json:"g,omitempty"`
	Scheme    rdn.Scheme `json:"k,omitempty"`
	Quote     bool       `json:"q,omitempty"`
	HTTPS     *bool      `json:"w,omitempty"` // set for a browser
}

// maxDenialHeader bounds an encoded denial, well under nginx's 4 KiB proxy_buffer_size
// for the whole header of the auth answer: a longer message is cut.
const maxDenialHeader = 2048

// encodeDenial encodes a denial for NginxDenialHeader: base64url of denialRecord's JSON.
func encodeDenial(d *Decision) string {
	rec := denialRecord{Status: d.Status, Flag: d.Flag, Message: d.Message, Rule: d.Rule, Quote: d.quote}
	if d.Price != nil {
		rec.Price = d.Price.String()
	}
	if ch := d.Channel; ch != nil {
		rec.Sender, rec.OpenBlock, rec.Scheme = ch.Sender.Hex(), ch.OpenBlock, ch.Scheme
		if ch.Balance != nil {
			rec.Balance = ch.Balance.String()
		}
		if ch.Signature != (rdn.Signature{}) {
			rec.Signature = ch.Signature.Hex()
		}
	}
	if d.browser != nil {
		rec.HTTPS = &d.browser.https
	}
	for {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(rec) // nothing in it fails to encode: Scheme comes from a proof taken
		text := base64.RawURLEncoding.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		if len(text) <= maxDenialHeader || rec.Message == "" {
			return text
		}
		cut := len(rec.Message) / 2
		for cut > 0 && !utf8.RuneStart(rec.Message[cut]) {
			cut--
		}
		rec.Message = strings.TrimSuffix(rec.Message[:cut], "…") + "…"
	}
}

// decodeDenial is encodeDenial's inverse; it refuses anything that is not a denial.
func decodeDenial(text string) (*Decision, error) {
	if text == "" {
		return nil, errors.New("missing")
	}
	data, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("not base64url: %w", err)
	}
	var rec denialRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil || dec.InputOffset() != int64(len(data)) {
		return nil, fmt.Errorf("not a denial: %q", data)
	}
	if rec.Status < 400 || rec.Status > 599 {
		return nil, fmt.Errorf("status %d is not a denial", rec.Status)
	}
	d := &Decision{Status: rec.Status, Flag: rec.Flag, Message: rec.Message, Rule: rec.Rule, quote: rec.Quote}
	if rec.Price != "" {
		if d.Price, err = rdn.ParseAmount(rec.Price); err != nil {
			return nil, err
		}
	}
	if rec.Sender != "" {
		if !common.IsHexAddress(rec.Sender) {
			return nil, fmt.Errorf("not an address: %q", rec.Sender)
		}
		ch := &ChannelState{Sender: common.HexToAddress(rec.Sender), OpenBlock: rec.OpenBlock, Scheme: rec.Scheme}
		if ch.Balance, err = rdn.ParseAmount(rec.Balance); err != nil {
			return nil, err
		}
		if rec.Signature != "" {
			if ch.Signature, err = rdn.DecodeSignature(rec.Signature); err != nil {
				return nil, err
			}
		}
		d.Channel = ch
	}
	if rec.HTTPS != nil {
		d.browser = &browser{https: *rec.HTTPS}
	}
	return d, nil
}
