package envoy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/rdn"
)

// replicaCount is how many uraiden replicas the replicated mode's configs spread Checks over.
const replicaCount = 3

// replicaFiles are the Envoy configs of the replicated mode (ledger.backend: etcd): every
// envoy*-replicas.yaml. They put Envoy before three replicas, not the Compose stack's one.
func replicaFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("envoy*-replicas.yaml")
	if err != nil || len(files) != 2 {
		t.Fatalf("want the gRPC and HTTP replicated configs, got %v (%v)", files, err)
	}
	return files
}

// The replicated configs spread ext_authz over three replicas, keep failing ones out (health
// checks, outlier detection), retry a failed check at another one, and, in the HTTP mode,
// keep a sender on one replica.
func TestReplicatedEnvoyConfigs(t *testing.T) {
	for _, file := range replicaFiles(t) {
		c := loadEnvoy(t, file)
		for _, problem := range replicaProblems(c) {
			t.Errorf("%s: %s", file, problem)
		}
	}
}

// authzService is the ext_authz filter's service: its cluster, whether it is gRPC, its
// timeout and retry policy.
type authzService struct {
	cluster *clusterv3.Cluster
	grpc    bool
	timeout float64
	retry   *corev3.RetryPolicy
	filter  *extauthzv3.ExtAuthz
}

func findCluster(c *envoyConfig, name string) *clusterv3.Cluster {
	for _, cl := range c.bootstrap.GetStaticResources().GetClusters() {
		if cl.GetName() == name {
			return cl
		}
	}
	return nil
}

// replicaProblems lists what keeps a replicated config from spreading Checks over the
// replicas safely; empty when it does.
func replicaProblems(c *envoyConfig) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	filters := typed[*extauthzv3.ExtAuthz](c)
	if len(filters) != 1 {
		return []string{fmt.Sprintf("%d ext_authz filters, want 1", len(filters))}
	}
	f := filters[0]
	s := authzService{filter: f}
	if h := f.GetHttpService(); h != nil {
		s.cluster, s.timeout, s.retry = findCluster(c, h.GetServerUri().GetCluster()), h.GetServerUri().GetTimeout().AsDuration().Seconds(), h.GetRetryPolicy()
	} else {
		g := f.GetGrpcService()
		s.cluster, s.grpc, s.timeout, s.retry = findCluster(c, g.GetEnvoyGrpc().GetClusterName()), true, g.GetTimeout().AsDuration().Seconds(), g.GetRetryPolicy()
	}
	if s.cluster == nil {
		return []string{"the ext_authz filter names no cluster of this config"}
	}
	problems = append(problems, spreadProblems(s.cluster)...)
	problems = append(problems, healthProblems(s)...)
	problems = append(problems, retryProblems(s)...)
	if !s.grpc {
		problems = append(problems, hashProblems(s)...)
	}
	// The channel API (cooperative close included) must survive a replica too.
	if admin := findCluster(c, "uraiden_admin"); admin == nil {
		bad("no uraiden_admin cluster")
	} else if n := len(endpointAddresses(admin)); n != replicaCount {
		bad("cluster uraiden_admin has %d distinct endpoints, want %d", n, replicaCount)
	}
	return problems
}

func endpointAddresses(cl *clusterv3.Cluster) []string {
	var addrs []string
	for _, le := range cl.GetLoadAssignment().GetEndpoints() {
		for _, e := range le.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			if a := fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()); !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
	}
	return addrs
}

// spreadProblems: three distinct replicas, all on one port, and outlier detection that takes
// out at most one of them.
func spreadProblems(cl *clusterv3.Cluster) []string {
	var problems []string
	addrs := endpointAddresses(cl)
	if len(addrs) != replicaCount {
		problems = append(problems, fmt.Sprintf("cluster %s has %d distinct endpoints %v, want %d replicas", cl.GetName(), len(addrs), addrs, replicaCount))
	}
	ports := map[string]bool{}
	for _, a := range addrs {
		ports[a[strings.LastIndex(a, ":"):]] = true
	}
	if len(ports) > 1 {
		problems = append(problems, fmt.Sprintf("cluster %s: the replicas listen on different ports %v", cl.GetName(), addrs))
	}
	od := cl.GetOutlierDetection()
	switch {
	case od == nil:
		problems = append(problems, fmt.Sprintf("cluster %s has no outlier_detection: a failing replica keeps getting Checks between health checks", cl.GetName()))
	case od.GetConsecutive_5Xx().GetValue() == 0 && od.GetConsecutiveGatewayFailure().GetValue() == 0:
		problems = append(problems, fmt.Sprintf("cluster %s: outlier_detection ejects on no consecutive failures", cl.GetName()))
	case od.GetMaxEjectionPercent() == nil || od.GetMaxEjectionPercent().GetValue()*replicaCount/100 > 1:
		// Envoy's default is 10%, which still ejects one host; unset here means nobody chose.
		problems = append(problems, fmt.Sprintf("cluster %s: max_ejection_percent %v ejects more than one of %d replicas", cl.GetName(), od.GetMaxEjectionPercent(), replicaCount))
	}
	return problems
}

// healthProblems: Envoy asks each replica the readiness uraiden reports: its gRPC health
// service under the Authorization service's name (internal/server sets it from /readyz), or
// /readyz on the admin port for the HTTP mode, which has no health endpoint of its own.
func healthProblems(s authzService) []string {
	var problems []string
	hcs := s.cluster.GetHealthChecks()
	if len(hcs) == 0 {
		return []string{fmt.Sprintf("cluster %s has no health_checks", s.cluster.GetName())}
	}
	for _, hc := range hcs {
		if s.grpc {
			if name := hc.GetGrpcHealthCheck().GetServiceName(); hc.GetGrpcHealthCheck() == nil || name != authv3.Authorization_ServiceDesc.ServiceName {
				problems = append(problems, fmt.Sprintf("cluster %s: want a grpc_health_check of %s, uraiden's readiness, got %v", s.cluster.GetName(), authv3.Authorization_ServiceDesc.ServiceName, hc.GetHealthChecker()))
			}
			continue
		}
		if hc.GetHttpHealthCheck().GetPath() != "/readyz" {
			problems = append(problems, fmt.Sprintf("cluster %s: want an http_health_check of /readyz, got %v", s.cluster.GetName(), hc.GetHealthChecker()))
		}
		admin := defaultPortOf(config.Default().Admin.Listen)
		for _, le := range s.cluster.GetLoadAssignment().GetEndpoints() {
			for _, e := range le.GetLbEndpoints() {
				if p := e.GetEndpoint().GetHealthCheckConfig().GetPortValue(); p != admin {
					problems = append(problems, fmt.Sprintf("cluster %s: an endpoint's health check goes to port %d, not the admin server's %d (/readyz)", s.cluster.GetName(), p, admin))
				}
			}
		}
	}
	return problems
}

// retryProblems: a Check that fails for want of a replica is tried at another one, soon,
// within the filter's timeout; one every replica refuses alike is not.
func retryProblems(s authzService) []string {
	r := s.retry
	if r == nil {
		return []string{"the ext_authz service has no retry_policy: a Check that meets a dying replica fails"}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	on := strings.Split(r.GetRetryOn(), ",")
	want := []string{"connect-failure", "reset"}
	if s.grpc {
		// A replica shutting down, or one grpc-go refuses for, answers UNAVAILABLE.
		want = append(want, "unavailable")
		// uraiden's RESOURCE_EXHAUSTED is an oversized CheckRequest: every replica refuses it.
		if slices.Contains(on, "resource-exhausted") {
			bad("retry_on %q retries resource-exhausted, which every replica answers alike", r.GetRetryOn())
		}
	}
	for _, w := range want {
		if !slices.Contains(on, w) {
			bad("retry_on %q lacks %s", r.GetRetryOn(), w)
		}
	}
	n := r.GetNumRetries().GetValue()
	if r.GetNumRetries() == nil || n < 1 || n > replicaCount-1 {
		bad("num_retries %v: want 1 to %d, one per other replica", r.GetNumRetries(), replicaCount-1)
	}
	if !slices.ContainsFunc(r.GetRetryHostPredicate(), func(p *corev3.RetryPolicy_RetryHostPredicate) bool {
		return p.GetName() == "envoy.retry_host_predicates.previous_hosts"
	}) {
		bad("no previous_hosts retry predicate: a retry may go back to the replica that failed")
	}
	// Without a back-off, Envoy waits 1 s between tries (the core RetryPolicy's default):
	// the whole budget.
	b := r.GetRetryBackOff()
	if b.GetBaseInterval().AsDuration() <= 0 || b.GetMaxInterval().AsDuration() <= 0 {
		bad("retry_back_off %v: Envoy's default base interval is 1 s", b)
	} else if wait := float64(n) * b.GetMaxInterval().AsDuration().Seconds(); wait >= s.timeout {
		bad("%d retries backing off up to %v each wait %.2f s, not within the ext_authz timeout of %.2f s", n, b.GetMaxInterval().AsDuration(), wait, s.timeout)
	}
	return problems
}

// hashProblems: in the HTTP mode, a sender's checks land on one replica: a consistent-hash
// cluster hashing, at the cluster (a route's hash_policy does not reach ext_authz), on the
// RDN-Sender-Address header, which the check request must carry.
func hashProblems(s authzService) []string {
	var problems []string
	if p := s.cluster.GetLbPolicy(); p != clusterv3.Cluster_RING_HASH && p != clusterv3.Cluster_MAGLEV {
		problems = append(problems, fmt.Sprintf("cluster %s: lb_policy %s does not hash", s.cluster.GetName(), p))
	}
	opts := &httpv3.HttpProtocolOptions{}
	if a := s.cluster.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; a == nil || a.UnmarshalTo(opts) != nil {
		return append(problems, fmt.Sprintf("cluster %s has no HttpProtocolOptions", s.cluster.GetName()))
	}
	sender := strings.ToLower(rdn.HeaderSenderAddress)
	if !slices.ContainsFunc(opts.GetHashPolicy(), func(h *routev3.RouteAction_HashPolicy) bool {
		return strings.EqualFold(h.GetHeader().GetHeaderName(), sender)
	}) {
		problems = append(problems, fmt.Sprintf("cluster %s: no hash_policy on the %s header", s.cluster.GetName(), sender))
	}
	carried := false
	for _, p := range s.filter.GetHttpService().GetAuthorizationRequest().GetAllowedHeaders().GetPatterns() {
		if p.GetIgnoreCase() && ((p.GetPrefix() != "" && strings.HasPrefix(sender, strings.ToLower(p.GetPrefix()))) || strings.EqualFold(p.GetExact(), sender)) {
			carried = true
		}
	}
	if !carried {
		problems = append(problems, fmt.Sprintf("the check request does not carry %s (allowed_headers): nothing to hash on", sender))
	}
	return problems
}

func defaultPortOf(listen string) uint32 {
	var port uint32
	fmt.Sscan(portOf(listen), &port)
	return port
}

// The checks above notice each way a replicated config can lose what it needs.
func TestReplicaChecksCatchMistakes(t *testing.T) {
	grpcFile, httpFile := "envoy-replicas.yaml", "envoy-http-replicas.yaml"
	authzCluster := func(c *envoyConfig) *clusterv3.Cluster {
		f := typed[*extauthzv3.ExtAuthz](c)[0]
		if h := f.GetHttpService(); h != nil {
			return findCluster(c, h.GetServerUri().GetCluster())
		}
		return findCluster(c, f.GetGrpcService().GetEnvoyGrpc().GetClusterName())
	}
	retry := func(c *envoyConfig) *corev3.RetryPolicy {
		f := typed[*extauthzv3.ExtAuthz](c)[0]
		if h := f.GetHttpService(); h != nil {
			return h.GetRetryPolicy()
		}
		return f.GetGrpcService().GetRetryPolicy()
	}
	mutations := []struct {
		file, name string
		mutate     func(c *envoyConfig)
	}{
		{grpcFile, "two replicas", func(c *envoyConfig) {
			le := authzCluster(c).GetLoadAssignment().GetEndpoints()[0]
			le.LbEndpoints = le.LbEndpoints[:2]
		}},
		{grpcFile, "one replica named thrice", func(c *envoyConfig) {
			for _, e := range authzCluster(c).GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints() {
				e.GetEndpoint().GetAddress().GetSocketAddress().Address = "uraiden-1"
			}
		}},
		{grpcFile, "a single admin replica", func(c *envoyConfig) {
			le := findCluster(c, "uraiden_admin").GetLoadAssignment().GetEndpoints()[0]
			le.LbEndpoints = le.LbEndpoints[:1]
		}},
		{grpcFile, "no health check", func(c *envoyConfig) { authzCluster(c).HealthChecks = nil }},
		{grpcFile, "health of another service", func(c *envoyConfig) {
			authzCluster(c).GetHealthChecks()[0].GetGrpcHealthCheck().ServiceName = "grpc.health.v1.Health"
		}},
		{grpcFile, "no outlier detection", func(c *envoyConfig) { authzCluster(c).OutlierDetection = nil }},
		{grpcFile, "every replica ejectable", func(c *envoyConfig) {
			authzCluster(c).GetOutlierDetection().MaxEjectionPercent = wrapperspb.UInt32(100)
		}},
		{grpcFile, "no retry policy", func(c *envoyConfig) { typed[*extauthzv3.ExtAuthz](c)[0].GetGrpcService().RetryPolicy = nil }},
		{grpcFile, "no retry on unavailable", func(c *envoyConfig) { retry(c).RetryOn = "connect-failure,reset" }},
		{grpcFile, "retry on resource-exhausted", func(c *envoyConfig) { retry(c).RetryOn += ",resource-exhausted" }},
		{grpcFile, "no retries", func(c *envoyConfig) { retry(c).NumRetries = wrapperspb.UInt32(0) }},
		{grpcFile, "retry on the same replica", func(c *envoyConfig) { retry(c).RetryHostPredicate = nil }},
		{grpcFile, "the default back-off", func(c *envoyConfig) { retry(c).RetryBackOff = nil }},
		{grpcFile, "back-off beyond the timeout", func(c *envoyConfig) {
			retry(c).GetRetryBackOff().GetMaxInterval().Seconds = 1
		}},
		{httpFile, "round robin", func(c *envoyConfig) { authzCluster(c).LbPolicy = clusterv3.Cluster_ROUND_ROBIN }},
		{httpFile, "no hash policy", func(c *envoyConfig) { setHashHeader(t, authzCluster(c), "") }},
		{httpFile, "a hash on another header", func(c *envoyConfig) { setHashHeader(t, authzCluster(c), "rdn-open-block-x") }},
		{httpFile, "the sender's header not sent", func(c *envoyConfig) {
			typed[*extauthzv3.ExtAuthz](c)[0].GetHttpService().GetAuthorizationRequest().AllowedHeaders = nil
		}},
		{httpFile, "health checked on the authz port", func(c *envoyConfig) {
			authzCluster(c).GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[1].GetEndpoint().HealthCheckConfig = nil
		}},
		{httpFile, "no retry policy", func(c *envoyConfig) { typed[*extauthzv3.ExtAuthz](c)[0].GetHttpService().RetryPolicy = nil }},
	}
	for _, m := range mutations {
		c := loadEnvoy(t, m.file)
		if p := replicaProblems(c); len(p) != 0 {
			t.Fatalf("%s: %v", m.file, p)
		}
		m.mutate(c)
		if len(replicaProblems(c)) == 0 {
			t.Errorf("%s with %s: not noticed", m.file, m.name)
		}
	}
}

// setHashHeader rewrites the cluster's HttpProtocolOptions with one header hash policy, or
// none for "".
func setHashHeader(t *testing.T, cl *clusterv3.Cluster, header string) {
	t.Helper()
	key := "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	opts := &httpv3.HttpProtocolOptions{}
	if err := cl.GetTypedExtensionProtocolOptions()[key].UnmarshalTo(opts); err != nil {
		t.Fatal(err)
	}
	opts.HashPolicy = nil
	if header != "" {
		opts.HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: header}}}}
	}
	if err := cl.GetTypedExtensionProtocolOptions()[key].MarshalFrom(opts); err != nil {
		t.Fatal(err)
	}
}
