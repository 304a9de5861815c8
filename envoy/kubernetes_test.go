package envoy

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/uraiden/uraiden/internal/config"
	"github.com/uraiden/uraiden/pricing"
)

// replicated are the resources of kubernetes/uraiden.yaml and kubernetes/etcd.yaml, each
// read strictly into its Kubernetes API type, by name.
type replicated struct {
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	services     map[string]*corev1.Service
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	pdbs         map[string]*policyv1.PodDisruptionBudget
}

func loadReplicated(t *testing.T) replicated {
	t.Helper()
	r := replicated{map[string]*corev1.ConfigMap{}, map[string]*corev1.Secret{}, map[string]*corev1.Service{},
		map[string]*appsv1.Deployment{}, map[string]*appsv1.StatefulSet{}, map[string]*policyv1.PodDisruptionBudget{}}
	for _, file := range []string{"kubernetes/uraiden.yaml", "kubernetes/etcd.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for doc := range strings.SplitSeq(string(data), "\n---\n") {
			var meta struct {
				Kind     string
				Metadata struct{ Name, Namespace string }
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			name := meta.Metadata.Name
			var target any
			switch meta.Kind {
			case "Namespace":
				target = &corev1.Namespace{}
			case "ConfigMap":
				r.configMaps[name] = &corev1.ConfigMap{}
				target = r.configMaps[name]
			case "Secret":
				r.secrets[name] = &corev1.Secret{}
				target = r.secrets[name]
			case "Service":
				r.services[name] = &corev1.Service{}
				target = r.services[name]
			case "Deployment":
				r.deployments[name] = &appsv1.Deployment{}
				target = r.deployments[name]
			case "StatefulSet":
				r.statefulSets[name] = &appsv1.StatefulSet{}
				target = r.statefulSets[name]
			case "PodDisruptionBudget":
				r.pdbs[name] = &policyv1.PodDisruptionBudget{}
				target = r.pdbs[name]
			default:
				t.Fatalf("%s: unexpected kind %q", file, meta.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
				t.Fatalf("%s %s %s: %v", file, meta.Kind, name, err)
			}
			if ns := meta.Metadata.Namespace; meta.Kind != "Namespace" && ns != "uraiden" {
				t.Errorf("%s %s %s: namespace %q, want uraiden", file, meta.Kind, name, ns)
			}
		}
	}
	for kind, n := range map[string]int{"ConfigMap": len(r.configMaps), "Secret": len(r.secrets), "Service": len(r.services),
		"Deployment": len(r.deployments), "StatefulSet": len(r.statefulSets), "PodDisruptionBudget": len(r.pdbs)} {
		if n == 0 {
			t.Errorf("no %s", kind)
		}
	}
	return r
}

func (r replicated) get(t *testing.T) (*appsv1.Deployment, *appsv1.StatefulSet) {
	t.Helper()
	d, s := r.deployments["uraiden"], r.statefulSets["etcd"]
	if d == nil || s == nil {
		t.Fatalf("want Deployment uraiden and StatefulSet etcd, got %v and %v", d != nil, s != nil)
	}
	return d, s
}

// etcdLedger is the ledger section's etcd part, as uraiden.yaml's config.yaml writes it.
type etcdLedger struct {
	Backend string `json:"backend"`
	Etcd    struct {
		Endpoints    []string `json:"endpoints"`
		Prefix       string   `json:"prefix"`
		Username     string   `json:"username"`
		PasswordFile string   `json:"password_file"`
		TLS          struct {
			CAFile   string `json:"ca_file"`
			CertFile string `json:"cert_file"`
			KeyFile  string `json:"key_file"`
		} `json:"tls"`
	} `json:"etcd"`
}

// uraidenConfig is the ConfigMap's config.yaml: the keys of the etcd ledger read as plain
// YAML, since internal/config does not know them yet, and the rest loaded by uraiden's own
// loader, strictly (an unknown or misspelt key fails).
func uraidenConfig(t *testing.T, r replicated, d *appsv1.Deployment) (config.Config, etcdLedger, *corev1.ConfigMap) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("uraiden's args %v name no --config", c.Args)
	}
	file := c.Args[i+1]
	cm := configMapOf(t, r, d, c, file)
	data, ok := cm.Data[path.Base(file)]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, path.Base(file))
	}
	var whole map[string]any
	if err := yaml.Unmarshal([]byte(data), &whole); err != nil {
		t.Fatal(err)
	}
	ledger, _ := whole["ledger"].(map[string]any)
	var etcd etcdLedger
	js, _ := json.Marshal(ledger)
	if err := json.Unmarshal(js, &etcd); err != nil {
		t.Fatal(err)
	}
	delete(ledger, "backend")
	delete(ledger, "etcd")
	rest, err := yaml.Marshal(whole)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(tmp, rest, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.New(), tmp, true)
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml: %v", err)
	}
	return cfg, etcd, cm
}

// mountOf is the volume of pod spec spec that container c sees at file, and the path of file
// inside it.
func mountOf(t *testing.T, spec corev1.PodSpec, c corev1.Container, file string) (corev1.Volume, string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if rel, ok := strings.CutPrefix(file, m.MountPath+"/"); ok {
			for _, v := range spec.Volumes {
				if v.Name == m.Name {
					return v, rel
				}
			}
			t.Fatalf("container %s mounts an undeclared volume %s", c.Name, m.Name)
		}
	}
	t.Errorf("container %s mounts nothing holding %s", c.Name, file)
	return corev1.Volume{}, ""
}

func configMapOf(t *testing.T, r replicated, d *appsv1.Deployment, c corev1.Container, file string) *corev1.ConfigMap {
	t.Helper()
	v, _ := mountOf(t, d.Spec.Template.Spec, c, file)
	if v.ConfigMap == nil || r.configMaps[v.ConfigMap.Name] == nil {
		t.Fatalf("%s is not on a ConfigMap of these files", file)
	}
	return r.configMaps[v.ConfigMap.Name]
}

// secretKey checks that file, as container c sees it, is a key of a Secret of these files,
// and returns the Secret's name and the key.
func secretKey(t *testing.T, r replicated, spec corev1.PodSpec, c corev1.Container, file string) (string, string) {
	t.Helper()
	v, rel := mountOf(t, spec, c, file)
	if v.Secret == nil {
		t.Errorf("container %s: %s is not on a Secret volume", c.Name, file)
		return "", ""
	}
	key := rel
	if len(v.Secret.Items) > 0 {
		key = ""
		for _, it := range v.Secret.Items {
			if it.Path == rel {
				key = it.Key
			}
		}
	}
	s := r.secrets[v.Secret.SecretName]
	if s == nil {
		t.Errorf("container %s: %s is on Secret %s, not in these files", c.Name, file, v.Secret.SecretName)
		return "", ""
	}
	if _, ok := s.StringData[key]; !ok {
		t.Errorf("container %s: %s is key %q of Secret %s, which has no such key", c.Name, file, key, s.Name)
	}
	return s.Name, key
}

// The replicated ledger's resources: kinds, and three replicas of uraiden behind a
// PodDisruptionBudget that keeps two, one per node, ready when their gRPC health says so.
func TestReplicatedDeployment(t *testing.T) {
	r := loadReplicated(t)
	d, _ := r.get(t)
	pod := d.Spec.Template
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("Deployment uraiden: replicas %d, want 3", ptrOr(d.Spec.Replicas))
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(pod.Labels)) {
		t.Errorf("Deployment uraiden selects %v, its pods are %v", d.Spec.Selector.MatchLabels, pod.Labels)
	}
	pdb := r.pdbs["uraiden"]
	switch {
	case pdb == nil:
		t.Fatal("no PodDisruptionBudget uraiden")
	case pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2:
		t.Errorf("PodDisruptionBudget uraiden: minAvailable %v, want 2", pdb.Spec.MinAvailable)
	case !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(labels.Set(pod.Labels)):
		t.Errorf("PodDisruptionBudget uraiden selects %v, not the pods %v", pdb.Spec.Selector.MatchLabels, pod.Labels)
	}
	// A rolling update must not take more than the budget allows, nor need a fourth node.
	if ru := d.Spec.Strategy.RollingUpdate; d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		ru.MaxUnavailable == nil || int(*d.Spec.Replicas)-ru.MaxUnavailable.IntValue() < pdb.Spec.MinAvailable.IntValue() ||
		ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 0 {
		t.Errorf("Deployment uraiden: strategy %+v: want a rolling update keeping minAvailable, without surge", d.Spec.Strategy)
	}
	checkAntiAffinity(t, "Deployment uraiden", pod)

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	cfg, _, _ := uraidenConfig(t, r, d)
	svc := r.services["uraiden"]
	if svc == nil {
		t.Fatal("no Service uraiden")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		t.Errorf("Service uraiden selects %v, not the pods %v", svc.Spec.Selector, pod.Labels)
	}
	for name, listen := range map[string]string{"grpc-authz": cfg.Authz.Listen, "http-authz": cfg.Authz.HTTPListen, "http-admin": cfg.Admin.Listen} {
		host, port, _ := net.SplitHostPort(listen)
		sp := servicePort(t, *svc, name)
		if host != "0.0.0.0" || port != strconv.Itoa(int(sp)) || !containerHasPort(c, name, sp) {
			t.Errorf("%s: uraiden listens on %q, the Service sends to %d, the container declares %v", name, listen, sp, c.Ports)
		}
	}
	probe := c.ReadinessProbe
	if probe == nil || probe.GRPC == nil || strconv.Itoa(int(probe.GRPC.Port)) != portOf(cfg.Authz.Listen) ||
		probe.GRPC.Service == nil || *probe.GRPC.Service != authv3.Authorization_ServiceDesc.ServiceName {
		t.Errorf("readiness: want a gRPC probe of %s on authz.listen's port, got %+v", authv3.Authorization_ServiceDesc.ServiceName, probe)
	}
	for _, ct := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		checkResources(t, "Deployment uraiden container "+ct.Name, ct)
	}

	// The price table is on the ConfigMap and parses.
	cm := configMapOf(t, r, d, c, cfg.Pricing.File)
	if _, err := pricing.Parse([]byte(cm.Data[path.Base(cfg.Pricing.File)])); err != nil {
		t.Errorf("%s in ConfigMap %s: %v", cfg.Pricing.File, cm.Name, err)
	}
}

func containerHasPort(c corev1.Container, name string, port int32) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name && p.ContainerPort == port })
}

// checkAntiAffinity: no two pods of the set on one node.
func checkAntiAffinity(t *testing.T, what string, pod corev1.PodTemplateSpec) {
	t.Helper()
	aa := pod.Spec.Affinity
	if aa == nil || aa.PodAntiAffinity == nil {
		t.Errorf("%s: no pod anti-affinity", what)
		return
	}
	for _, term := range aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		if term.TopologyKey == corev1.LabelHostname && term.LabelSelector != nil &&
			labels.SelectorFromSet(term.LabelSelector.MatchLabels).Matches(labels.Set(pod.Labels)) {
			return
		}
	}
	t.Errorf("%s: no required anti-affinity of its own pods on %s", what, corev1.LabelHostname)
}

func checkResources(t *testing.T, what string, c corev1.Container) {
	t.Helper()
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
		t.Errorf("%s: want cpu and memory requests and a memory limit, got %+v", what, c.Resources)
	}
}

// The keys and passwords uraiden reads come from the Secrets: private ones installed with
// mode 600 for uraiden's user by the init container (a Secret volume is owned by root), the
// certificates mounted as they are.
func TestReplicatedSecrets(t *testing.T) {
	r := loadReplicated(t)
	d, _ := r.get(t)
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	cfg, etcd, _ := uraidenConfig(t, r, d)
	if len(spec.InitContainers) != 1 {
		t.Fatalf("%d init containers, want the one installing the secrets", len(spec.InitContainers))
	}
	init := spec.InitContainers[0]
	uid := c.SecurityContext.RunAsUser
	if uid == nil {
		t.Fatal("uraiden's container names no user")
	}
	installs := map[string]string{} // destination → source
	script := strings.Join(init.Command, " ")
	for _, m := range regexp.MustCompile(`install -m 600 -o (\d+) -g (\d+) (\S+) (\S+)`).FindAllStringSubmatch(script, -1) {
		if m[1] != strconv.FormatInt(*uid, 10) || m[2] != m[1] {
			t.Errorf("%s is installed for %s:%s, uraiden runs as %d", m[4], m[1], m[2], *uid)
		}
		installs[m[4]] = m[3]
	}
	for key, file := range map[string]string{"receiver.key_file": cfg.Receiver.KeyFile,
		"ledger.etcd.password_file": etcd.Etcd.PasswordFile, "ledger.etcd.tls.key_file": etcd.Etcd.TLS.KeyFile} {
		src, ok := installs[file]
		if !ok {
			t.Errorf("%s %q is not installed with mode 600 by the init container: %s", key, file, script)
			continue
		}
		secretKey(t, r, spec, init, src)
		dst, _ := mountOf(t, spec, init, file)
		if seen, _ := mountOf(t, spec, c, file); seen.Name != dst.Name || dst.EmptyDir == nil {
			t.Errorf("%s %q: the init container writes volume %s, uraiden reads %s", key, file, dst.Name, seen.Name)
		}
	}
	for key, file := range map[string]string{"ledger.etcd.tls.ca_file": etcd.Etcd.TLS.CAFile, "ledger.etcd.tls.cert_file": etcd.Etcd.TLS.CertFile} {
		if file == "" {
			t.Errorf("%s is empty", key)
			continue
		}
		secretKey(t, r, spec, c, file)
	}
	// The container sees neither the password nor a private key straight from a Secret,
	// where they are owned by root.
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				for _, it := range v.Secret.Items {
					if it.Key == "password" || strings.HasSuffix(it.Key, ".key") {
						t.Errorf("uraiden's container mounts %s of Secret %s", it.Key, v.Secret.SecretName)
					}
				}
				if len(v.Secret.Items) == 0 {
					t.Errorf("uraiden's container mounts all of Secret %s", v.Secret.SecretName)
				}
			}
		}
	}
}

// etcdFlags are the etcd container's --flag=value arguments of member name.
func etcdFlags(t *testing.T, c corev1.Container, member string) map[string]string {
	t.Helper()
	flags := map[string]string{}
	for _, a := range c.Args {
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasPrefix(a, "--") {
			t.Fatalf("etcd argument %q is not --flag=value", a)
		}
		flags[k] = strings.ReplaceAll(v, "$(POD_NAME)", member)
	}
	return flags
}

func urlPort(t *testing.T, raw string) (*url.URL, int32) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("%s: no port", raw)
	}
	return u, int32(p)
}

// etcd: three members on a headless Service, each named in --initial-cluster by its stable
// StatefulSet name; ports agree between flags, container and Service; TLS between members and
// to clients; compaction and a quota with room for a defragmentation; uraiden's endpoints are
// the members.
func TestEtcdStatefulSet(t *testing.T) {
	r := loadReplicated(t)
	d, s := r.get(t)
	if s.Spec.Replicas == nil || *s.Spec.Replicas != 3 {
		t.Fatalf("StatefulSet etcd: replicas %d, want 3", ptrOr(s.Spec.Replicas))
	}
	svc := r.services[s.Spec.ServiceName]
	if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
		t.Fatalf("StatefulSet etcd: serviceName %q is not a headless Service publishing not-ready members", s.Spec.ServiceName)
	}
	if s.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: the first member waits for a quorum that never starts", s.Spec.PodManagementPolicy)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)) {
		t.Errorf("Service %s does not select the members", svc.Name)
	}
	checkAntiAffinity(t, "StatefulSet etcd", s.Spec.Template)
	if pdb := r.pdbs["etcd"]; pdb == nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 ||
		!labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(labels.Set(s.Spec.Template.Labels)) {
		t.Errorf("want a PodDisruptionBudget etcd with maxUnavailable 1 over the members")
	}
	c := s.Spec.Template.Spec.Containers[0]
	checkResources(t, "StatefulSet etcd", c)
	if c.Image != "gcr.io/etcd-development/etcd:v3.7.3" && c.Image != "quay.io/coreos/etcd:v3.7.3" {
		t.Errorf("image %q: want etcd's official v3.7.3", c.Image)
	}

	domain := fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace)
	var members []string
	for i := range int(*s.Spec.Replicas) {
		members = append(members, fmt.Sprintf("%s-%d", s.Name, i))
	}
	peerPort, clientPort := servicePort(t, *svc, "peer"), servicePort(t, *svc, "client")
	for _, name := range []string{"peer", "client"} {
		if !containerHasPort(c, name, servicePort(t, *svc, name)) {
			t.Errorf("etcd container ports %v lack the Service's %s port %d", c.Ports, name, servicePort(t, *svc, name))
		}
	}
	for _, m := range members {
		f := etcdFlags(t, c, m)
		// --initial-cluster: every member, by its stable name, at its peer port.
		var named []string
		for entry := range strings.SplitSeq(f["initial-cluster"], ",") {
			name, raw, _ := strings.Cut(entry, "=")
			u, port := urlPort(t, raw)
			if u.Hostname() != name+"."+domain || port != peerPort || u.Scheme != "https" {
				t.Errorf("--initial-cluster entry %q: want https://%s.%s:%d", entry, name, domain, peerPort)
			}
			named = append(named, name)
		}
		if !slices.Equal(named, members) {
			t.Errorf("--initial-cluster names %v, the StatefulSet's members are %v", named, members)
		}
		if f["name"] != m {
			t.Errorf("--name %q for member %s", f["name"], m)
		}
		for flag, want := range map[string]string{
			"initial-advertise-peer-urls": fmt.Sprintf("https://%s.%s:%d", m, domain, peerPort),
			"advertise-client-urls":       fmt.Sprintf("https://%s.%s:%d", m, domain, clientPort),
		} {
			if f[flag] != want {
				t.Errorf("--%s %q, want %q", flag, f[flag], want)
			}
		}
		for flag, port := range map[string]int32{"listen-peer-urls": peerPort, "listen-client-urls": clientPort} {
			if u, p := urlPort(t, f[flag]); p != port || u.Scheme != "https" {
				t.Errorf("--%s %q: want https on %d", flag, f[flag], port)
			}
		}
		if m != members[0] {
			continue
		}
		// TLS both ways, from files of the mounted Secret.
		for _, flag := range []string{"trusted-ca-file", "cert-file", "key-file", "peer-trusted-ca-file", "peer-cert-file", "peer-key-file"} {
			if f[flag] == "" {
				t.Errorf("no --%s", flag)
				continue
			}
			secretKey(t, r, s.Spec.Template.Spec, c, f[flag])
		}
		if f["client-cert-auth"] != "true" || f["peer-client-cert-auth"] != "true" {
			t.Errorf("--client-cert-auth %q, --peer-client-cert-auth %q: want both true", f["client-cert-auth"], f["peer-client-cert-auth"])
		}
		// Compaction, and a quota the volume holds twice (a defragmentation copies the database).
		if (f["auto-compaction-mode"] != "periodic" && f["auto-compaction-mode"] != "revision") || f["auto-compaction-retention"] == "" {
			t.Errorf("auto-compaction mode %q retention %q: history grows until the quota stops writes", f["auto-compaction-mode"], f["auto-compaction-retention"])
		}
		quota, err := strconv.ParseInt(f["quota-backend-bytes"], 10, 64)
		if err != nil || quota <= 0 || quota > 8<<30 {
			t.Errorf("--quota-backend-bytes %q: want a quota up to etcd's recommended 8 GiB", f["quota-backend-bytes"])
		}
		checkVolumeClaims(t, s, c, f["data-dir"], quota)
		// The probes use the plain metrics listener: the kubelet has no client certificate.
		mu, mp := urlPort(t, f["listen-metrics-urls"])
		for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if mu.Scheme != "http" || p == nil || p.HTTPGet == nil || int32(p.HTTPGet.Port.IntValue()) != mp {
				t.Errorf("%s probe %+v: want an HTTP GET on the metrics listener %s", what, p, f["listen-metrics-urls"])
			}
		}
	}

	// uraiden reaches each member on its client port, over TLS, with a client certificate.
	_, etcd, _ := uraidenConfig(t, r, d)
	if etcd.Backend != "etcd" {
		t.Errorf("ledger.backend %q, want etcd", etcd.Backend)
	}
	var reached []string
	for _, e := range etcd.Etcd.Endpoints {
		u, p := urlPort(t, e)
		name, _ := strings.CutSuffix(u.Hostname(), "."+domain)
		if u.Scheme != "https" || p != clientPort || !slices.Contains(members, name) || slices.Contains(reached, name) {
			t.Errorf("ledger.etcd.endpoints: %q is not a member's client URL (https://<member>.%s:%d)", e, domain, clientPort)
		}
		reached = append(reached, name)
	}
	if len(reached) != len(members) {
		t.Errorf("ledger.etcd.endpoints %v: want every member", etcd.Etcd.Endpoints)
	}
	if etcd.Etcd.Prefix == "" || etcd.Etcd.Username == "" || etcd.Etcd.TLS.CertFile == "" {
		t.Errorf("ledger.etcd: want a prefix, a username and a client certificate (--client-cert-auth), got %+v", etcd.Etcd)
	}
}

// checkVolumeClaims: the data directory is on the claim template, sized for twice the quota.
func checkVolumeClaims(t *testing.T, s *appsv1.StatefulSet, c corev1.Container, dataDir string, quota int64) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(dataDir, m.MountPath+"/") {
			continue
		}
		for _, pvc := range s.Spec.VolumeClaimTemplates {
			if pvc.Name == m.Name {
				size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
				if size.Cmp(*resource.NewQuantity(2*quota, resource.BinarySI)) < 0 {
					t.Errorf("claim %s holds %s, less than twice the quota of %d bytes", pvc.Name, size.String(), quota)
				}
				return
			}
		}
	}
	t.Errorf("--data-dir %q is not on a volume claim template", dataDir)
}

// In the mesh, the replicas are the host of the ext_authz provider, and a DestinationRule
// ejects a failing one, never more than one of the three.
func TestReplicatedIstio(t *testing.T) {
	r := loadReplicated(t)
	data, err := os.ReadFile("kubernetes/istio-destination-rule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Kind string
		Spec json.RawMessage
	}
	if err := yaml.Unmarshal(data, &doc); err != nil || doc.Kind != "DestinationRule" {
		t.Fatalf("istio-destination-rule.yaml: kind %q, %v", doc.Kind, err)
	}
	dr := &networkingv1alpha3.DestinationRule{}
	if err := protojson.Unmarshal(doc.Spec, dr); err != nil {
		t.Fatalf("istio-destination-rule.yaml: %v", err)
	}
	mesh := &meshv1alpha1.MeshConfig{}
	istioSpec(t, "mesh-config.yaml", mesh, "meshConfig")
	provider := mesh.GetExtensionProviders()[0].GetEnvoyExtAuthzGrpc()
	svc := r.services["uraiden"]
	if svc == nil {
		t.Fatal("no Service uraiden")
	}
	host := svc.Name + "." + svc.Namespace + ".svc.cluster.local"
	if dr.GetHost() != host || provider.GetService() != host {
		t.Errorf("DestinationRule host %q, mesh provider %q, the replicas' Service %q", dr.GetHost(), provider.GetService(), host)
	}
	if int32(provider.GetPort()) != servicePort(t, *svc, "grpc-authz") {
		t.Errorf("mesh provider port %d, the Service's grpc-authz %d", provider.GetPort(), servicePort(t, *svc, "grpc-authz"))
	}
	od := dr.GetTrafficPolicy().GetOutlierDetection()
	switch {
	case od == nil:
		t.Error("no outlierDetection: a failing replica keeps getting Checks")
	case od.GetConsecutive_5XxErrors().GetValue() == 0 && od.GetConsecutiveGatewayErrors().GetValue() == 0:
		t.Error("outlierDetection ejects on no consecutive errors")
	case od.GetMaxEjectionPercent() == 0 || od.GetMaxEjectionPercent()*replicaCount/100 > 1:
		t.Errorf("maxEjectionPercent %d ejects more than one of %d replicas", od.GetMaxEjectionPercent(), replicaCount)
	}
}

func ptrOr(n *int32) int32 {
	if n == nil {
		return 0
	}
	return *n
}
