package envoy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// The types the configs' typed_config fields name, so that their Any values resolve.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/uraiden/uraiden/authz"
	"github.com/uraiden/uraiden/authz/paywall"
	"github.com/uraiden/uraiden/discovery"
	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/internal/gateway"
	"github.com/uraiden/uraiden/pricing"
)

// envoyConfig is a validated Envoy bootstrap and every message its Any fields hold.
type envoyConfig struct {
	bootstrap *bootstrapv3.Bootstrap
	typed     []proto.Message
}

// parseEnvoy does what Envoy does at start with a bootstrap file, short of running: it
// rejects unknown fields, bad enums, unknown types and values out of range, in the bootstrap
// and in every typed_config, which the bootstrap's own ValidateAll does not look into.
func parseEnvoy(data []byte) (*envoyConfig, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, b); err != nil {
		return nil, err
	}
	if err := b.ValidateAll(); err != nil {
		return nil, err
	}
	c := &envoyConfig{bootstrap: b}
	return c, c.unpackAnys(b.ProtoReflect(), "bootstrap")
}

// unpackAnys finds every Any in m, at any depth, unpacks and validates it, and looks inside
// it in turn (an HCM's HTTP filters are Anys inside the listener filter's Any).
func (c *envoyConfig) unpackAnys(m protoreflect.Message, path string) error {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		v, ok := inner.(interface{ ValidateAll() error })
		if !ok {
			return fmt.Errorf("%s: %s has no validation", path, a.GetTypeUrl())
		}
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s (%s): %w", path, a.GetTypeUrl(), err)
		}
		c.typed = append(c.typed, inner)
		return c.unpackAnys(inner.ProtoReflect(), path+"<"+string(inner.ProtoReflect().Descriptor().Name())+">")
	}
	var errs []error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		at := path + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				errs = append(errs, c.unpackAnys(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", at, i)))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				errs = append(errs, c.unpackAnys(mv.Message(), at+"["+k.String()+"]"))
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			errs = append(errs, c.unpackAnys(v.Message(), at))
		}
		return true
	})
	return errors.Join(errs...)
}

// envoyFiles are the Envoy bootstraps under this directory: every envoy*.yaml.
func envoyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("envoy*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no envoy*.yaml here (%v)", err)
	}
	return files
}

func loadEnvoy(t *testing.T, file string) *envoyConfig {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseEnvoy(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return c
}

func typed[T proto.Message](c *envoyConfig) []T {
	var out []T
	for _, m := range c.typed {
		if v, ok := m.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func defaultPort(t *testing.T, listen string) uint32 {
	t.Helper()
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

func cluster(t *testing.T, c *envoyConfig, name string) *clusterv3.Cluster {
	t.Helper()
	for _, cl := range c.bootstrap.GetStaticResources().GetClusters() {
		if cl.GetName() == name {
			return cl
		}
	}
	t.Fatalf("no cluster %q", name)
	return nil
}

func clusterPort(cl *clusterv3.Cluster) uint32 {
	return cl.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
}

// Every Envoy config validates, typed_config included, and its ext_authz filter is set up
// as uraiden needs: V3, a timeout, no failing open, 503 when uraiden cannot answer, and
// either gRPC to an HTTP/2 cluster on authz.listen's port or HTTP to authz.http_listen.
func TestEnvoyConfigsValidate(t *testing.T) {
	defaults := config.Default()
	for _, file := range envoyFiles(t) {
		c := loadEnvoy(t, file)
		filters := typed[*extauthzv3.ExtAuthz](c)
		if len(filters) != 1 {
			t.Fatalf("%s: %d ext_authz filters, want 1", file, len(filters))
		}
		f := filters[0]
		switch {
		case f.GetTransportApiVersion().String() != "V3":
			t.Errorf("%s: transport_api_version %s", file, f.GetTransportApiVersion())
		case f.GetFailureModeAllow():
			t.Errorf("%s: failure_mode_allow must be false: an unreachable uraiden would give requests away", file)
		case f.GetStatusOnError().GetCode() != 503:
			t.Errorf("%s: status_on_error %v, want 503", file, f.GetStatusOnError().GetCode())
		}
		if f.GetHttpService() != nil {
			checkHTTPService(t, file, c, f.GetHttpService())
		} else {
			checkGRPCService(t, file, c, f.GetGrpcService(), defaults)
		}
		checkRoutes(t, file, c, defaults)
		for _, problem := range pathNormalizationProblems(c) {
			t.Errorf("%s: %s", file, problem)
		}
	}
}

// pathNormalizationProblems: every HTTP connection manager resolves the path before
// routing and ext_authz (dot segments, repeated slashes, escaped slashes), so that uraiden
// prices the path the upstream serves.
func pathNormalizationProblems(c *envoyConfig) []string {
	var problems []string
	hcms := typed[*hcmv3.HttpConnectionManager](c)
	if len(hcms) == 0 {
		problems = append(problems, "no http_connection_manager")
	}
	for _, hcm := range hcms {
		if !hcm.GetNormalizePath().GetValue() {
			problems = append(problems, "normalize_path is not true: /x/../echofix/hello would reach uraiden unresolved")
		}
		if !hcm.GetMergeSlashes() {
			problems = append(problems, "merge_slashes is not true: //echofix/hello would reach uraiden unmerged")
		}
		switch a := hcm.GetPathWithEscapedSlashesAction(); a {
		case hcmv3.HttpConnectionManager_REJECT_REQUEST, hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT, hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		default:
			problems = append(problems, fmt.Sprintf("path_with_escaped_slashes_action %s keeps %%2F, which a file server reads as /", a))
		}
	}
	return problems
}

// Removing any of the path normalization settings is caught.
func TestPathNormalizationIsChecked(t *testing.T) {
	for _, file := range envoyFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, setting := range []string{"normalize_path: true", "merge_slashes: true", "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT"} {
			mutated := strings.Replace(string(data), setting, "", 1)
			if mutated == string(data) {
				t.Fatalf("%s: no %q", file, setting)
			}
			c, err := parseEnvoy([]byte(mutated))
			if err != nil {
				t.Fatalf("%s without %q: %v", file, setting, err)
			}
			if len(pathNormalizationProblems(c)) == 0 {
				t.Errorf("%s without %q: not noticed", file, setting)
			}
		}
	}
}

func checkGRPCService(t *testing.T, file string, c *envoyConfig, grpc *corev3.GrpcService, defaults config.Config) {
	t.Helper()
	if grpc.GetTimeout().AsDuration() <= 0 {
		t.Errorf("%s: no ext_authz timeout", file)
	}
	authzCluster := cluster(t, c, grpc.GetEnvoyGrpc().GetClusterName())
	if got, want := clusterPort(authzCluster), defaultPort(t, defaults.Authz.Listen); got != want {
		t.Errorf("%s: ext_authz cluster port %d, want authz.listen's %d", file, got, want)
	}
	opts := &httpv3.HttpProtocolOptions{}
	anyOpts := authzCluster.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if err := anyOpts.UnmarshalTo(opts); err != nil || opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("%s: the ext_authz cluster must speak HTTP/2 explicitly (%v)", file, err)
	}
}

// checkHTTPService: uraiden's HTTP authorization gets the original path after its prefix
// and the RDN-* proof, and its x-rdn-* and RDN-* answers reach the upstream and the client.
func checkHTTPService(t *testing.T, file string, c *envoyConfig, h *extauthzv3.HttpService) {
	t.Helper()
	if h.GetServerUri().GetTimeout().AsDuration() <= 0 {
		t.Errorf("%s: no ext_authz timeout", file)
	}
	if h.GetPathPrefix() != authz.EnvoyHTTPPrefix {
		t.Errorf("%s: path_prefix %q, want %q", file, h.GetPathPrefix(), authz.EnvoyHTTPPrefix)
	}
	cl := cluster(t, c, h.GetServerUri().GetCluster())
	if !strings.HasSuffix(h.GetServerUri().GetUri(), ":"+strconv.Itoa(int(clusterPort(cl)))) {
		t.Errorf("%s: server_uri %s and cluster port %d disagree", file, h.GetServerUri().GetUri(), clusterPort(cl))
	}
	allows := func(name string, m *matcherv3.ListStringMatcher, header string) {
		for _, p := range m.GetPatterns() {
			if !p.GetIgnoreCase() {
				continue
			}
			if (p.GetPrefix() != "" && strings.HasPrefix(header, strings.ToLower(p.GetPrefix()))) || strings.EqualFold(p.GetExact(), header) {
				return
			}
		}
		t.Errorf("%s: %s does not let %s through", file, name, header)
	}
	resp := h.GetAuthorizationResponse()
	allows("allowed_headers", h.GetAuthorizationRequest().GetAllowedHeaders(), "rdn-balance-signature")
	allows("allowed_headers", h.GetAuthorizationRequest().GetAllowedHeaders(), "accept")
	allows("allowed_upstream_headers", resp.GetAllowedUpstreamHeaders(), authz.UpstreamSender)
	allows("allowed_client_headers", resp.GetAllowedClientHeaders(), "rdn-price")
	allows("allowed_client_headers", resp.GetAllowedClientHeaders(), "set-cookie")
	allows("allowed_client_headers_on_success", resp.GetAllowedClientHeadersOnSuccess(), "rdn-sender-balance")
}

// checkRoutes: the channel API goes to the admin server on admin.listen's port without
// authorization, and only its public part; a route prices itself with uraiden.price.
func checkRoutes(t *testing.T, file string, c *envoyConfig, defaults config.Config) {
	t.Helper()
	channel := defaults.APIPrefix() + "/channels/0x8Bf640A099fE945DA46F354d3B49c48a125F48B6/315123"
	asset := defaults.APIPrefix() + paywall.AssetDir + "/paywall.js"
	var adminRoute, pricedRoute *routev3.Route
	for _, hcm := range typed[*hcmv3.HttpConnectionManager](c) {
		for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if adminRoute == nil && matches(t, r, channel) {
					adminRoute = r
				}
				if perRoute(t, r).GetCheckSettings().GetContextExtensions()[pricing.ExtPrice] != "" {
					pricedRoute = r
				}
			}
		}
	}
	if adminRoute == nil {
		t.Fatalf("%s: no route for %s", file, channel)
	}
	if !matches(t, adminRoute, asset) {
		t.Errorf("%s: the channel API route does not serve the paywall's %s", file, asset)
	}
	// The public documents: what is for sale (at the API and at the server's root), its
	// schema and the API's description, all as the gateway routes them.
	public := []string{defaults.APIPrefix() + discovery.PricesPath, discovery.WellKnownPath,
		defaults.APIPrefix() + discovery.SchemaPath, defaults.APIPrefix() + "/openapi.yaml", defaults.APIPrefix() + "/openapi.json"}
	for _, doc := range public {
		if !matches(t, adminRoute, doc) {
			t.Errorf("%s: the channel API route does not serve %s", file, doc)
		}
		if !gateway.AdminRoutes(defaults.APIPrefix()).MatchString(doc) {
			t.Errorf("the gateway does not route %s to the admin server, as %s does", doc, file)
		}
	}
	if !perRoute(t, adminRoute).GetDisabled() {
		t.Errorf("%s: ext_authz is not disabled on the channel API route", file)
	}
	if got, want := clusterPort(cluster(t, c, adminRoute.GetRoute().GetCluster())), defaultPort(t, defaults.Admin.Listen); got != want {
		t.Errorf("%s: channel API cluster port %d, want admin.listen's %d", file, got, want)
	}
	// Neither the operator endpoints nor paths that merely look like the public ones.
	for _, other := range []string{defaults.APIPrefix() + "/stats", defaults.APIPrefix() + "/channels",
		defaults.APIPrefix() + "/channels/0x8Bf640A099fE945DA46F354d3B49c48a125F48B6", "/metrics", "/debug/pprof/",
		defaults.APIPrefix() + "/pricesX", "/.well-known/uraidenX", "/x/.well-known/uraiden"} {
		if matches(t, adminRoute, other) {
			t.Errorf("%s: the channel API route also exposes %s", file, other)
		}
		if gateway.AdminRoutes(defaults.APIPrefix()).MatchString(other) {
			t.Errorf("the gateway routes %s to the admin server", other)
		}
	}
	if pricedRoute == nil {
		t.Fatalf("%s: no route sets %s", file, pricing.ExtPrice)
	}
	price := perRoute(t, pricedRoute).GetCheckSettings().GetContextExtensions()[pricing.ExtPrice]
	if _, err := strconv.ParseUint(price, 10, 64); err != nil {
		t.Errorf("%s: %s %q is not a price", file, pricing.ExtPrice, price)
	}
}

// matches reports whether a route's prefix, path or regex matches path.
func matches(t *testing.T, r *routev3.Route, path string) bool {
	t.Helper()
	m := r.GetMatch()
	switch {
	case m.GetSafeRegex() != nil:
		return regexp.MustCompile("^(?:" + m.GetSafeRegex().GetRegex() + ")$").MatchString(path)
	case m.GetPath() != "":
		return m.GetPath() == path
	default:
		return strings.HasPrefix(path, m.GetPrefix())
	}
}

func perRoute(t *testing.T, r *routev3.Route) *extauthzv3.ExtAuthzPerRoute {
	t.Helper()
	pr := &extauthzv3.ExtAuthzPerRoute{}
	if a := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; a != nil {
		if err := a.UnmarshalTo(pr); err != nil {
			t.Fatal(err)
		}
	}
	return pr
}

// The validation catches what Envoy would refuse at start, including inside typed_config,
// where the bootstrap's own ValidateAll does not look.
func TestEnvoyValidationCatchesMistakes(t *testing.T) {
	data, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	broken := map[string]string{
		"a typo'd field":                  strings.Replace(text, "failure_mode_allow:", "failure_mode_alow:", 1),
		"a field typo'd in the bootstrap": strings.Replace(text, "connect_timeout:", "conect_timeout:", 1),
		"a bad enum":                      strings.Replace(text, "transport_api_version: V3", "transport_api_version: V4", 1),
		"an empty ext_authz cluster":      strings.Replace(text, "cluster_name: uraiden }", "cluster_name: \"\" }", 1),
		"a port out of range":             strings.Replace(text, "port_value: 10000", "port_value: 100000", 1),
		"an unknown type":                 strings.Replace(text, "ext_authz.v3.ExtAuthzPerRoute", "ext_authz.v3.ExtAuthzPerRout", 1),
	}
	for name, mutated := range broken {
		if mutated == text {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		if _, err := parseEnvoy([]byte(mutated)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The empty cluster name lives in an Any: the bootstrap's ValidateAll alone misses it.
	js, _ := yaml.YAMLToJSON([]byte(broken["an empty ext_authz cluster"]))
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, b); err != nil || b.ValidateAll() != nil {
		t.Errorf("the bootstrap alone should pass: %v", err)
	}
}

// The mTLS transport sockets docs/operations.md documents fit envoy.yaml's clusters: with them
// added, the bootstrap still validates, and each cluster presents a client certificate,
// verifies uraiden's against a CA and a name, and the gRPC one negotiates h2.
func TestMTLSTransportSockets(t *testing.T) {
	var sockets map[string]any
	data, err := os.ReadFile("mtls-transport-sockets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &sockets); err != nil {
		t.Fatal(err)
	}
	var bootstrap map[string]any
	if data, err = os.ReadFile("envoy.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &bootstrap); err != nil {
		t.Fatal(err)
	}
	added := 0
	for _, cl := range bootstrap["static_resources"].(map[string]any)["clusters"].([]any) {
		cluster := cl.(map[string]any)
		if socket, ok := sockets[cluster["name"].(string)]; ok {
			cluster["transport_socket"] = socket
			added++
		}
	}
	if added != len(sockets) || added != 2 {
		t.Fatalf("%d of %d sockets match a cluster of envoy.yaml", added, len(sockets))
	}
	data, err = yaml.Marshal(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseEnvoy(data)
	if err != nil {
		t.Fatalf("envoy.yaml with the mTLS sockets: %v", err)
	}
	for _, name := range []string{"uraiden", "uraiden_admin"} {
		ctx := &tlsv3.UpstreamTlsContext{}
		if err := cluster(t, c, name).GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		common := ctx.GetCommonTlsContext()
		validation := common.GetValidationContext()
		if len(common.GetTlsCertificates()) != 1 || validation.GetTrustedCa().GetFilename() == "" || len(validation.GetMatchTypedSubjectAltNames()) == 0 {
			t.Errorf("%s: a client certificate, a trusted CA and a name to match are needed: %v", name, common)
		}
		if h2 := slices.Contains(common.GetAlpnProtocols(), "h2"); h2 != (name == "uraiden") {
			t.Errorf("%s: ALPN %v: h2 for gRPC only", name, common.GetAlpnProtocols())
		}
	}
}
