package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	vconfig "github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi/datamodel"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"sigs.k8s.io/yaml"

	"github.com/uraiden/uraiden/internal/config"
)

// apiSpec is the OpenAPI document a running server serves, read by libopenapi with its
// references resolved over HTTP from the same server (prices.schema.json), and a validator
// of requests and responses against it.
type apiSpec struct {
	t         *testing.T
	model     *v3.Document
	validator validator.Validator
	// lenient validates the documents that are their own format (the OpenAPI document in
	// JSON, the JSON Schema), whose properties the API does not enumerate; their content is
	// validated as what it is elsewhere.
	lenient validator.Validator
	options *vconfig.ValidationOptions
	// covered are the operations exercised, "METHOD path" as the document names them.
	covered map[string]bool
}

// loadAPISpec reads the OpenAPI document of the server at base with the API at prefix.
func loadAPISpec(t *testing.T, base, prefix string) *apiSpec {
	t.Helper()
	r := do(t, "GET", base+prefix+"/openapi.yaml", "", "")
	if r.status != 200 {
		t.Fatalf("GET %s/openapi.yaml: %d %s", prefix, r.status, r.body)
	}
	// Relative references resolve against where the document is served, as a tool reading
	// it from the server would.
	dir, err := url.Parse(base + prefix + "/")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocumentWithConfiguration(r.body, &datamodel.DocumentConfiguration{
		BaseURL: dir, AllowRemoteReferences: true,
	})
	if err != nil {
		t.Fatalf("libopenapi: %v", err)
	}
	if doc.GetSpecInfo().SpecFormat != "oas3_1" || !strings.HasPrefix(doc.GetVersion(), "3.1") {
		t.Fatalf("not an OpenAPI 3.1 document: %s %s", doc.GetSpecInfo().SpecFormat, doc.GetVersion())
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("the OpenAPI document does not build: %v", err)
	}
	// Strict: a response field or header the document does not declare is an error too.
	opts := []vconfig.Option{vconfig.WithStrictMode(), vconfig.WithFormatAssertions(),
		vconfig.WithStrictIgnoredHeaders("Content-Length", "Date", "Content-Type", "Vary", "X-Content-Type-Options",
			"Access-Control-Allow-Origin", "Allow", "Cache-Control", "Authorization", "Accept-Encoding", "User-Agent",
			"X-Go-Pprof", "Content-Disposition", "Transfer-Encoding")}
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("the OpenAPI document does not validate against the OpenAPI 3.1 schema:\n%s", describe(errs))
	}
	lenient, errs := validator.NewValidator(doc, vconfig.WithFormatAssertions())
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	return &apiSpec{t: t, model: &model.Model, validator: v, lenient: lenient, options: vconfig.NewValidationOptions(opts...),
		covered: map[string]bool{}}
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  %s %s: %s (%s)\n", e.RequestMethod, e.RequestPath, e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "    %s: %s\n", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// call sends a request to the running server and checks its answer against the document,
// and the request too when it is one a client may send (valid).
func (s *apiSpec) call(method, url, token, contentType, body string, header map[string]string, valid bool) response {
	s.t.Helper()
	newRequest := func() *http.Request {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			s.t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return req
	}
	resp, err := http.DefaultClient.Do(newRequest())
	if err != nil {
		s.t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	what := fmt.Sprintf("%s %s (%d)", method, url, resp.StatusCode)
	req := newRequest()
	if _, literal := s.model.Paths.PathItems.Get(req.URL.Path); literal {
		s.covered[method+" "+req.URL.Path] = true
	} else if item, errs, path := paths.FindPath(req, s.model, s.options); item != nil {
		s.covered[method+" "+path] = true
	} else {
		s.t.Errorf("%s: no path of the document: %s", what, describe(errs))
	}
	v := s.validator
	if strings.HasSuffix(req.URL.Path, "/openapi.json") || strings.HasSuffix(req.URL.Path, "/prices.schema.json") {
		v = s.lenient
	}
	if valid {
		if ok, errs := v.ValidateHttpRequest(newRequest()); !ok {
			s.t.Errorf("%s: the request does not follow the document:\n%s", what, describe(errs))
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if ok, errs := v.ValidateHttpResponse(newRequest(), resp); !ok {
		s.t.Errorf("%s: the response does not follow the document:\n%s%.300s", what, describe(errs), data)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect is call, checking the status too.
func (s *apiSpec) expect(status int, method, url, token, body string, valid bool) response {
	s.t.Helper()
	contentType := ""
	if body != "" {
		contentType = "application/json"
	}
	r := s.call(method, url, token, contentType, body, nil, valid)
	if r.status != status {
		s.t.Errorf("%s %s: %d, want %d: %.300s", method, url, r.status, status, r.body)
	}
	return r
}

// The OpenAPI document is valid OpenAPI 3.1, names every route the server has (and no
// other), and every answer of the running server to every operation follows it.
func TestOpenAPI(t *testing.T) {
	s := newScenarioWith(t, func(c *config.Config) { c.Admin.PProf = true })
	spec := loadAPISpec(t, s.base, "/api/1")

	// Every route is in the document, with its methods, and every path of the document is a route.
	routes := s.srv.Admin.Routes()
	for pattern, methods := range routes {
		path := pattern
		switch {
		case strings.HasPrefix(path, "/debug/pprof/") && path != "/debug/pprof/":
			path = "/debug/pprof/{profile}"
		case strings.HasSuffix(path, "/") && path != "/debug/pprof/":
			path += "{asset}" // a subtree: one file below it
		}
		item, ok := spec.model.Paths.PathItems.Get(path)
		if !ok {
			t.Errorf("the route %s is not in the OpenAPI document", pattern)
			continue
		}
		if methods == nil {
			methods = []string{"GET"} // a handler of any method; the document names what a client uses
		}
		for _, m := range methods {
			if op, ok := item.GetOperations().Get(strings.ToLower(m)); !ok || op == nil {
				t.Errorf("%s %s is not in the OpenAPI document", m, pattern)
			}
		}
	}
	for path := range spec.model.Paths.PathItems.KeysFromOldest() {
		pattern := strings.TrimSuffix(path, "{asset}")
		if path == "/debug/pprof/{profile}" {
			pattern = "/debug/pprof/" // pprof.Index serves the named profiles
		}
		if _, ok := routes[pattern]; !ok {
			t.Errorf("the OpenAPI document names %s, which the server does not route", path)
		}
	}

	// The JSON form is the same document.
	var fromYAML, fromJSON any
	if err := yaml.Unmarshal(do(t, "GET", s.base+"/api/1/openapi.yaml", "", "").body, &fromYAML); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(do(t, "GET", s.base+"/api/1/openapi.json", "", "").body, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromYAML, fromJSON) {
		t.Error("openapi.json is not openapi.yaml")
	}

	b := s.base
	// Probes and metrics.
	spec.expect(200, "GET", b+"/healthz", "", "", true)
	spec.expect(200, "GET", b+"/readyz", "", "", true)
	spec.expect(200, "GET", b+"/metrics", testToken, "", true)
	spec.expect(401, "GET", b+"/metrics", "", "", false)
	spec.expect(403, "GET", b+"/metrics", "wrong-token-0123456789", "", false)
	spec.expect(200, "GET", b+"/debug/pprof/", testToken, "", true)
	spec.expect(200, "GET", b+"/debug/pprof/cmdline", testToken, "", true)
	spec.expect(200, "GET", b+"/debug/pprof/heap?debug=1", testToken, "", false) // debug: a query the document leaves to pprof
	spec.expect(401, "GET", b+"/debug/pprof/cmdline", "", "", false)

	// The public documents, each with its ETag.
	for _, path := range []string{"/.well-known/uraiden", "/api/1/prices", "/api/1/prices.schema.json", "/api/1/openapi.yaml", "/api/1/openapi.json"} {
		r := spec.expect(200, "GET", b+path, "", "", true)
		etag := r.header.Get("ETag")
		if r := spec.call("GET", b+path, "", "", "", map[string]string{"If-None-Match": etag}, true); r.status != 304 {
			t.Errorf("GET %s If-None-Match its ETag: %d", path, r.status)
		}
		spec.expect(200, "HEAD", b+path, "", "", true)
		if r := spec.call("HEAD", b+path, "", "", "", map[string]string{"If-None-Match": etag}, true); r.status != 304 {
			t.Errorf("HEAD %s If-None-Match its ETag: %d", path, r.status)
		}
	}

	// Statistics and listings.
	spec.expect(200, "GET", b+"/api/1/stats", testToken, "", true)
	spec.expect(401, "GET", b+"/api/1/stats", "", "", false)
	spec.expect(403, "GET", b+"/api/1/stats", "wrong-token-0123456789", "", false)
	page := spec.expect(200, "GET", b+"/api/1/channels?status=all&limit=1", testToken, "", true)
	if page.header.Get("X-Next-Cursor") == "" {
		t.Error("a page of one of three channels has no next cursor")
	}
	spec.expect(200, "GET", b+"/api/1/channels?cursor="+page.header.Get("X-Next-Cursor"), testToken, "", true)
	spec.expect(400, "GET", b+"/api/1/channels?status=bogus", testToken, "", false)
	spec.expect(401, "GET", b+"/api/1/channels", "", "", false)
	sender := "/api/1/channels/" + s.a.sender.Hex()
	spec.expect(200, "GET", b+sender, testToken, "", true)
	spec.expect(400, "GET", b+"/api/1/channels/0x1234", testToken, "", false)
	spec.expect(403, "GET", b+sender, "wrong-token-0123456789", "", false)

	// One channel: public, and with signatures for the operator.
	public := spec.expect(200, "GET", b+channelPath(s.a), "", "", true)
	operator := spec.expect(200, "GET", b+channelPath(s.a), testToken, "", true)
	if strings.Contains(string(public.body), "balance_signature") || !strings.Contains(string(operator.body), "balance_signature") {
		t.Errorf("the signatures: public %s, operator %s", public.body, operator.body)
	}
	spec.expect(400, "GET", b+sender+"/x", "", "", false)
	spec.expect(404, "GET", b+sender+"/1", "", "", true)
	if r := spec.call("GET", b+channelPath(s.a), "", "", "", map[string]string{"Authorization": "Basic eDp5"}, false); r.status != 401 {
		t.Errorf("Basic credentials: %d", r.status)
	}
	spec.expect(403, "GET", b+channelPath(s.a), "wrong-token-0123456789", "", false)

	// The cooperative close: every refusal, then the close, in JSON and as a form.
	unknown := channel{key: s.a.key, sender: s.a.sender, openBlock: 1}
	spec.expect(400, "DELETE", b+channelPath(s.a), "", `{"balance": 15}`, false)
	spec.expect(403, "DELETE", b+channelPath(s.a), "", closeBody(15, s.sign(s.a.key, s.a, 15)), true)
	spec.expect(404, "DELETE", b+channelPath(unknown), "", s.senderClose(unknown, 0), true)
	conflict := spec.expect(409, "DELETE", b+channelPath(s.a), "", s.senderClose(s.a, 10), true)
	if !strings.Contains(string(conflict.body), `"balance":"15"`) {
		t.Errorf("a stale balance's conflict names no balance: %s", conflict.body)
	}
	spec.expect(413, "DELETE", b+channelPath(s.a), "", closeBody(15, "0x00")+strings.Repeat(" ", 64<<10), false)
	closed := spec.expect(200, "DELETE", b+channelPath(s.a), "", s.senderClose(s.a, 15), true)
	if !strings.Contains(string(closed.body), "close_signature") {
		t.Errorf("the close: %s", closed.body)
	}
	request := s.closeRequest(s.b.key, s.b, 0, nil)
	form := fmt.Sprintf("balance=0&balance_signature=%s&close_request_signature=%s&close_request_expires=%d",
		s.sign(s.b.key, s.b, 0), request.sig, request.expires)
	if r := spec.call("DELETE", b+channelPath(s.b), "", "application/x-www-form-urlencoded", form, nil, true); r.status != 200 {
		t.Errorf("the close as a form: %d %s", r.status, r.body)
	}
	spec.expect(200, "GET", b+channelPath(s.a), testToken, "", true) // closing, signed

	// The paywall's assets.
	js := spec.expect(200, "GET", b+"/api/1/paywall/paywall.js", "", "", true)
	spec.expect(200, "GET", b+"/api/1/paywall/paywall.css", "", "", true)
	if r := spec.call("GET", b+"/api/1/paywall/paywall.js", "", "", "", map[string]string{"If-None-Match": js.header.Get("ETag")}, true); r.status != 304 {
		t.Errorf("paywall.js If-None-Match its ETag: %d", r.status)
	}
	spec.expect(200, "HEAD", b+"/api/1/paywall/paywall.js", "", "", true)
	spec.expect(404, "GET", b+"/api/1/paywall/nope.js", "", "", false)

	// Every operation of the document was held against a real answer.
	for path, item := range spec.model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().KeysFromOldest() {
			if key := strings.ToUpper(method) + " " + path; !spec.covered[key] {
				t.Errorf("%s was not exercised", key)
			}
		}
	}
	if t.Failed() {
		t.Logf("exercised: %v", slices.Sorted(func(yield func(string) bool) {
			for k := range spec.covered {
				if !yield(k) {
					return
				}
			}
		}))
	}
}

// Under another prefix the document names the API's paths under it, and stays valid.
func TestOpenAPIFollowsThePrefix(t *testing.T) {
	base, _ := bareAdmin(t, "/pay/api/", nil)
	spec := loadAPISpec(t, base, "/pay/api")
	var names []string
	for path := range spec.model.Paths.PathItems.KeysFromOldest() {
		names = append(names, path)
		root := path == "/healthz" || path == "/readyz" || path == "/metrics" || strings.HasPrefix(path, "/debug/pprof/") ||
			path == "/.well-known/uraiden"
		if !root && !strings.HasPrefix(path, "/pay/api/") {
			t.Errorf("the document names %s, outside the prefix /pay/api", path)
		}
	}
	if !slices.Contains(names, "/pay/api/channels/{sender}/{open_block}") || !slices.Contains(names, "/pay/api/prices") {
		t.Errorf("paths %v", names)
	}
	asJSON := do(t, "GET", base+"/pay/api/openapi.json", "", "")
	if asJSON.status != 200 || !strings.Contains(string(asJSON.body), `"/pay/api/stats"`) || strings.Contains(string(asJSON.body), `"/api/1/`) {
		t.Errorf("openapi.json under /pay/api: %d %.200s", asJSON.status, asJSON.body)
	}
	spec.expect(200, "GET", base+"/pay/api/openapi.json", "", "", true)
	spec.expect(200, "GET", base+"/healthz", "", "", true)
}
