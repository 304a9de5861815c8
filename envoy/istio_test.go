package envoy

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/uraiden/uraiden/internal/config"
)

// istioSpec reads an Istio resource's spec (or a part of it, by path) into its API type,
// refusing unknown fields.
func istioSpec(t *testing.T, file string, into proto.Message, path ...string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("istio", file))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var node any = doc
	for _, key := range append([]string{"spec"}, path...) {
		m, _ := node.(map[string]any)
		if node = m[key]; node == nil {
			t.Fatalf("%s: no %s", file, key)
		}
	}
	js, _ := json.Marshal(node)
	if err := protojson.Unmarshal(js, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// kubeObjects are uraiden.yaml's resources, each read strictly into its API type.
type kubeObjects struct {
	deployment appsv1.Deployment
	service    corev1.Service
	pvc        corev1.PersistentVolumeClaim
	secret     corev1.Secret
}

func loadKube(t *testing.T) kubeObjects {
	t.Helper()
	data, err := os.ReadFile("istio/uraiden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var objs kubeObjects
	seen := map[string]bool{}
	for doc := range strings.SplitSeq(string(data), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		targets := map[string]any{"Deployment": &objs.deployment, "Service": &objs.service,
			"PersistentVolumeClaim": &objs.pvc, "Secret": &objs.secret, "Namespace": &corev1.Namespace{}}
		target, ok := targets[meta.Kind]
		if !ok {
			t.Fatalf("uraiden.yaml: unexpected kind %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			t.Fatalf("uraiden.yaml %s: %v", meta.Kind, err)
		}
		seen[meta.Kind] = true
	}
	for _, kind := range []string{"Deployment", "Service", "PersistentVolumeClaim", "Secret"} {
		if !seen[kind] {
			t.Errorf("uraiden.yaml has no %s", kind)
		}
	}
	return objs
}

// The mesh's provider reaches uraiden's Service on its gRPC port with a timeout of its own,
// fails closed, and is the one the CUSTOM policy names.
func TestIstioProviderAndPolicy(t *testing.T) {
	mesh := &meshv1alpha1.MeshConfig{}
	istioSpec(t, "mesh-config.yaml", mesh, "meshConfig")
	policy := &securityv1beta1.AuthorizationPolicy{}
	istioSpec(t, "authorization-policy.yaml", policy)
	kube := loadKube(t)

	providers := mesh.GetExtensionProviders()
	if len(providers) != 1 || providers[0].GetEnvoyExtAuthzGrpc() == nil {
		t.Fatalf("want one envoyExtAuthzGrpc provider, got %v", providers)
	}
	p := providers[0].GetEnvoyExtAuthzGrpc()
	switch {
	case p.GetTimeout().AsDuration() <= 0:
		t.Error("no timeout: Istio's default is 600 s")
	case p.GetFailOpen():
		t.Error("failOpen: an unreachable uraiden would give requests away")
	case p.GetStatusOnError() != "503":
		t.Errorf("statusOnError %q, want 503", p.GetStatusOnError())
	}
	// The path is resolved before authorization (and decoded: %2F is a separator to a file
	// server), so that uraiden prices the path the workload serves.
	if n := mesh.GetPathNormalization().GetNormalization(); n != meshv1alpha1.MeshConfig_ProxyPathNormalization_DECODE_AND_MERGE_SLASHES {
		t.Errorf("pathNormalization %s, want DECODE_AND_MERGE_SLASHES", n)
	}
	svc := kube.service
	if want := svc.Name + "." + svc.Namespace + ".svc.cluster.local"; p.GetService() != want {
		t.Errorf("provider service %q, want %q", p.GetService(), want)
	}
	grpcPort := defaultPort(t, config.Default().Authz.Listen)
	if p.GetPort() != grpcPort || servicePort(t, svc, "grpc-authz") != int32(grpcPort) {
		t.Errorf("provider port %d, Service grpc-authz %d, want authz.listen's %d", p.GetPort(), servicePort(t, svc, "grpc-authz"), grpcPort)
	}

	if policy.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		t.Errorf("policy action %s, want CUSTOM", policy.GetAction())
	}
	if policy.GetProvider().GetName() != providers[0].GetName() {
		t.Errorf("policy provider %q, mesh provider %q", policy.GetProvider().GetName(), providers[0].GetName())
	}
	if len(policy.GetRules()) == 0 {
		t.Error("a CUSTOM policy without rules checks nothing")
	}
}

func servicePort(t *testing.T, svc corev1.Service, name string) int32 {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			if p.TargetPort.IntValue() != int(p.Port) {
				t.Errorf("Service port %s: %d → %s", name, p.Port, p.TargetPort.String())
			}
			return p.Port
		}
	}
	t.Fatalf("Service has no port %s", name)
	return 0
}

// uraiden's Deployment is a valid configuration listening where the Service points, keeps
// its ledger on the claim, reads the receiver's key from the Secret, and never runs twice
// on one ledger.
func TestIstioDeployment(t *testing.T) {
	kube := loadKube(t)
	d := kube.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("want one replica replaced by Recreate: Badger's lock allows one process per ledger")
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	for _, e := range c.Env {
		t.Setenv(e.Name, e.Value)
	}
	cfg, err := config.Load(config.New(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	for name, listen := range map[string]string{"grpc-authz": cfg.Authz.Listen, "http-admin": cfg.Admin.Listen} {
		host, port, _ := net.SplitHostPort(listen)
		if host != "0.0.0.0" || port != strconv.Itoa(int(servicePort(t, kube.service, name))) {
			t.Errorf("%s: uraiden listens on %s, the Service sends to %d", name, listen, servicePort(t, kube.service, name))
		}
	}
	if got := c.ReadinessProbe.HTTPGet.Port.IntValue(); strconv.Itoa(got) != portOf(cfg.Admin.Listen) || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %s:%d, want /readyz on admin.listen", c.ReadinessProbe.HTTPGet.Path, got)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(c corev1.Container, path string) corev1.Volume {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(path, m.MountPath+"/") {
				return volumes[m.Name]
			}
		}
		t.Errorf("container %s mounts nothing holding %s", c.Name, path)
		return corev1.Volume{}
	}
	if claim := mountOf(c, cfg.Ledger.Dir).PersistentVolumeClaim; claim == nil || claim.ClaimName != kube.pvc.Name {
		t.Errorf("ledger %s is not on the claim %s", cfg.Ledger.Dir, kube.pvc.Name)
	}
	// The key reaches its volume from the Secret through the init container.
	keys := mountOf(c, cfg.Receiver.KeyFile)
	if len(d.Spec.Template.Spec.InitContainers) != 1 {
		t.Fatal("no init container installs the receiver's key")
	}
	init := d.Spec.Template.Spec.InitContainers[0]
	if mountOf(init, cfg.Receiver.KeyFile).Name != keys.Name {
		t.Errorf("the init container does not write the key volume %s", keys.Name)
	}
	script := strings.Join(init.Command, " ")
	if src := mountOf(init, "/secret/receiver.key").Secret; src == nil || src.SecretName != kube.secret.Name ||
		!strings.Contains(script, "-m 600") || !strings.Contains(script, cfg.Receiver.KeyFile) {
		t.Errorf("the key %s is not installed with mode 600 from the Secret %s: %s", cfg.Receiver.KeyFile, kube.secret.Name, script)
	}
	if _, ok := kube.secret.StringData[filepath.Base("/secret/receiver.key")]; !ok {
		t.Errorf("the Secret has no receiver.key")
	}
}

func portOf(listen string) string {
	_, port, _ := net.SplitHostPort(listen)
	return port
}
