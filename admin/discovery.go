package admin

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/uraiden/uraiden/discovery"
	"github.com/uraiden/uraiden/pricing"
	"github.com/uraiden/uraiden/rdn"
)

// Discovery is what the discovery document states besides the Config's receiver, contract,
// token address, chain id and proof schemes.
type Discovery struct {
	// Prices returns the price table in force; the document follows it, rebuilt the first
	// time it is asked for after the table changed.
	Prices func() *pricing.Table
	// GatewayPath is the RDN-Gateway-Path clients are given (authz.gateway_path), where the
	// channel API is reached; the Config's Prefix, where this server mounts it, may differ
	// behind a proxy that rewrites paths. Empty is the Prefix.
	GatewayPath string
	// TokenSymbol is the token's ERC20 symbol(), "" when it has none.
	TokenSymbol string
	// Confirmations are the blocks a deposit waits before it takes payments.
	Confirmations uint64
	// ChallengePeriod is the contract's, in blocks.
	ChallengePeriod uint32
}

// publicMaxAge is how long a cache may keep the discovery document, its schema and the
// OpenAPI document: a changed price reaches clients within a minute, while a client asking
// before every request costs one 304 a minute at most.
const publicMaxAge = 60

// cached is a rendered body and its ETag.
type cached struct {
	body        []byte
	etag        string
	contentType string
}

func newCached(contentType string, body []byte) *cached {
	sum := sha256.Sum256(body)
	// A strong ETag from the content alone: replicas serving the same document give the same
	// one, and a restart keeps it.
	return &cached{body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, contentType: contentType}
}

// renderedDiscovery is the document rendered for one price table.
type renderedDiscovery struct {
	table *pricing.Table
	*cached
}

// discoveryDocument renders the document of the table in force, or returns the one already
// rendered for it. Two requests racing after a reload may both render it; they render the
// same bytes.
func (s *Server) discoveryDocument() (*cached, error) {
	table := s.cfg.Discovery.Prices()
	if r := s.discovery.Load(); r != nil && r.table == table {
		return r.cached, nil
	}
	// Indented, and without escaping <, > and & (which the document never puts in HTML), so
	// that a person reading it sees the patterns as written.
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.buildDiscovery(table)); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	r := &renderedDiscovery{table: table, cached: newCached("application/json", body.Bytes())}
	s.discovery.Store(r)
	return r.cached, nil
}

// buildDiscovery states the table and the chain settings. It names nothing of the server's
// own configuration beyond what every 402 already tells a client (receiver, contract,
// token, gateway path, proof schemes) and what the chain tells anyone: no upstream, no
// listener, no key, no ledger.
func (s *Server) buildDiscovery(table *pricing.Table) discovery.Document {
	d := s.cfg.Discovery
	doc := discovery.Document{
		Version:         discovery.Version,
		GatewayPath:     d.GatewayPath,
		ChainID:         s.cfg.ChainID,
		ReceiverAddress: discovery.Address(s.cfg.Receiver),
		ContractAddress: discovery.Address(s.cfg.Contract),
		Token:           discovery.Token{Address: discovery.Address(s.cfg.TokenAddress), Symbol: d.TokenSymbol},
		Confirmations:   d.Confirmations,
		ChallengePeriod: d.ChallengePeriod,
		Rules:           []discovery.Rule{},
	}
	for _, scheme := range s.schemes() {
		doc.ProofSchemes = append(doc.ProofSchemes, scheme.String())
	}
	if s.offers(rdn.SchemeTyped) {
		doc.EIP712Domain = &discovery.EIP712Domain{Name: rdn.DomainName, Version: rdn.DomainVersion,
			ChainID: s.cfg.ChainID, VerifyingContract: discovery.Address(s.cfg.Contract)}
	}
	token, hasDecimals := table.Token()
	if hasDecimals {
		decimals := token.Decimals
		doc.Token.Decimals = &decimals
	}
	price := func(base *big.Int) discovery.Price {
		p := discovery.Price{Base: discovery.Amount{Int: base}}
		if hasDecimals {
			p.Tokens = discovery.FormatTokens(base, token.Decimals)
		}
		return p
	}
	doc.DefaultPrice = price(table.DefaultPrice())
	for _, ru := range table.Rules() {
		r := discovery.Rule{Name: ru.Name, Methods: ru.Methods, Host: ru.Host, Path: ru.Path, Computed: ru.Computed()}
		if r.Methods == nil {
			r.Methods = []string{}
		}
		if !r.Computed {
			p := price(ru.Price)
			r.Price = &p
		}
		doc.Rules = append(doc.Rules, r)
	}
	return doc
}

// schemes are the proof schemes offered, preferred first: legacy alone unless ProofSchemes
// says otherwise.
func (s *Server) schemes() []rdn.Scheme {
	if len(s.cfg.ProofSchemes) == 0 {
		return []rdn.Scheme{rdn.SchemeLegacy}
	}
	return s.cfg.ProofSchemes
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	doc, err := s.discoveryDocument()
	if err != nil {
		s.log.Error("discovery document", "err", err)
		writeError(w, http.StatusInternalServerError, "the discovery document could not be rendered")
		return
	}
	serveCached(w, r, doc)
}

// serveCached answers a GET or HEAD of a public document that caches may keep: a 304 when
// If-None-Match holds its ETag (RFC 9110 §13.1.2), else the document.
func serveCached(w http.ResponseWriter, r *http.Request, c *cached) {
	h := w.Header()
	h.Set("ETag", c.etag)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(publicMaxAge))
	// Public and credential-free, so a page of any origin may read it.
	h.Set("Access-Control-Allow-Origin", "*")
	if noneMatch := r.Header.Values("If-None-Match"); len(noneMatch) > 0 && etagListed(noneMatch, c.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", c.contentType)
	h.Set("Content-Length", strconv.Itoa(len(c.body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(c.body)
	}
}

// etagListed reports whether If-None-Match's lists name etag, or are "*" (the document
// exists). If-None-Match compares weakly: W/"x" matches "x".
func etagListed(lists []string, etag string) bool {
	for _, list := range lists {
		for _, tag := range strings.Split(list, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// openAPIYAML is the OpenAPI document of this server, written for the default prefix.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// defaultPrefix is the prefix openapi.yaml names its paths under.
const defaultPrefix = "/api/1"

// apiPathKey matches the keys of openapi.yaml's paths under the default prefix: a path key
// is indented by two spaces in its paths mapping and nowhere else.
var apiPathKey = regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(defaultPrefix) + `/`)

// openAPIDocuments renders the OpenAPI document for the server's prefix, in YAML and JSON.
func openAPIDocuments(prefix string) (yamlDoc, jsonDoc *cached, err error) {
	text := openAPIYAML
	if prefix != defaultPrefix {
		text = apiPathKey.ReplaceAll(text, []byte("  "+prefix+"/"))
	}
	asJSON, err := yaml.YAMLToJSON(text)
	if err != nil {
		return nil, nil, fmt.Errorf("admin: openapi.yaml: %w", err)
	}
	return newCached("application/yaml", text), newCached("application/json", asJSON), nil
}
