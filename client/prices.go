package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/uraiden/uraiden/discovery"
)

// maxDiscoveryBytes bounds the discovery document read: a table of a thousand rules takes
// a few hundred KiB; more is no document of a uraiden server.
const maxDiscoveryBytes = 4 << 20

// Prices reads a server's discovery document (docs/discovery.md): its price table's rules
// in the order they are tried, the default price, and how to pay (receiver, contract,
// token, chain, proof schemes, confirmations, challenge period). rawURL is the document's
// address (<gateway path>/prices) or a server's base URL without a path, where it is read
// from /.well-known/uraiden. hc nil is http.DefaultClient.
//
// The document tells what to expect; the server's 402 remains the authority on a request's
// price (a computed price, a route priced in the proxy, a table reloaded since).
func Prices(ctx context.Context, hc *http.Client, rawURL string) (*discovery.Document, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prices: %q is not an http(s) URL", rawURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = discovery.WellKnownPath
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("prices: %s answered %s, not a discovery document", u, resp.Status)
	}
	if mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mediaType != "application/json" {
		return nil, fmt.Errorf("prices: %s answered %q, not a JSON discovery document", u, resp.Header.Get("Content-Type"))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("prices: read %s: %w", u, err)
	}
	if len(data) > maxDiscoveryBytes {
		return nil, fmt.Errorf("prices: %s answered more than %d bytes", u, maxDiscoveryBytes)
	}
	return readDiscovery(data)
}

// readDiscovery decodes a document of the version this client reads. Fields it does not know
// are ignored: a version may gain fields.
func readDiscovery(data []byte) (*discovery.Document, error) {
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("prices: not a discovery document: %w", err)
	}
	if probe.Version == nil {
		return nil, errors.New("prices: not a discovery document: no version")
	}
	if *probe.Version != discovery.Version {
		return nil, fmt.Errorf("prices: the document's format is version %d; this client reads version %d", *probe.Version, discovery.Version)
	}
	var doc discovery.Document
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	if len(doc.ProofSchemes) == 0 || doc.ChainID == 0 || doc.GatewayPath == "" {
		return nil, errors.New("prices: the document names no proof scheme, chain or gateway path")
	}
	for i, r := range doc.Rules {
		if r.Computed != (r.Price == nil) || r.Price != nil && r.Price.Base.Int == nil {
			return nil, fmt.Errorf("prices: rule %d %q: a price must be given exactly when it is not computed", i+1, r.Name)
		}
	}
	if doc.DefaultPrice.Base.Int == nil {
		return nil, errors.New("prices: the document has no default price")
	}
	return &doc, nil
}
