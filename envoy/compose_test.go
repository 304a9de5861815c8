package envoy

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/uraiden/uraiden/internal/config"
)

// composeFile is the part of a Compose file the stack depends on. Unknown keys are errors,
// so a typo fails here rather than at `docker compose up`.
type composeFile struct {
	Services map[string]composeService `json:"services"`
}

type composeService struct {
	Image       string            `json:"image"`
	Build       *composeBuild     `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Ports       []string          `json:"ports"`
	Expose      []string          `json:"expose"`
	DependsOn   []string          `json:"depends_on"`
}

type composeBuild struct {
	Context    string `json:"context"`
	Dockerfile string `json:"dockerfile"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile("docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	return c
}

// Every file the stack mounts or builds from exists: the volumes' host paths, the build
// context and Dockerfile, and what the Dockerfile copies from the context.
func TestComposeFilesExist(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			host, _, _ := strings.Cut(v, ":")
			if _, err := os.Stat(host); err != nil {
				t.Errorf("service %s mounts %s: %v", name, host, err)
			}
		}
		if s.Build == nil {
			if s.Image == "" {
				t.Errorf("service %s has neither image nor build", name)
			}
			continue
		}
		dockerfile := filepath.Join(s.Build.Context, s.Build.Dockerfile)
		for _, src := range dockerfileSources(t, dockerfile) {
			if _, err := os.Stat(filepath.Join(s.Build.Context, src)); err != nil {
				t.Errorf("%s copies %s: %v", dockerfile, src, err)
			}
		}
	}
	if img := c.Services["envoy"].Image; !strings.HasPrefix(img, "envoyproxy/envoy:") {
		t.Errorf("envoy image %q, want Envoy's official envoyproxy/envoy", img)
	}
}

// dockerfileSources lists the context paths a Dockerfile's COPY instructions read (not
// those copied from another stage).
func dockerfileSources(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var srcs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--from=") {
			continue
		}
		srcs = append(srcs, fields[1:len(fields)-1]...)
	}
	if len(srcs) == 0 {
		t.Fatalf("%s copies nothing from its context", path)
	}
	return srcs
}

// The services listen where envoy.yaml looks for them, and Envoy's listener is published.
func TestComposeAgreesWithEnvoy(t *testing.T) {
	c := loadCompose(t)
	if !slices.Contains(c.Services["envoy"].Volumes, "./envoy.yaml:/etc/envoy/envoy.yaml:ro") {
		t.Errorf("envoy does not mount envoy.yaml where the image reads it: %v", c.Services["envoy"].Volumes)
	}
	for _, file := range envoyFiles(t) {
		// The replicated mode's configs need three replicas and etcd, which the stack does
		// not run; replicas_test.go checks them.
		if !strings.HasSuffix(file, "-replicas.yaml") {
			checkComposeServes(t, c, file)
		}
	}
	// The host's client pays on the dev chain, at the address `uraiden get` defaults to.
	if !slices.Contains(c.Services["uraiden"].Ports, "127.0.0.1:8545:8545") {
		t.Errorf("the dev chain is not published on 127.0.0.1:8545: %v", c.Services["uraiden"].Ports)
	}
}

// checkComposeServes: the stack runs what an Envoy config (mounted in its place) needs.
func checkComposeServes(t *testing.T, c composeFile, file string) {
	t.Helper()
	env := loadEnvoy(t, file)
	envoySvc := c.Services["envoy"]
	for _, l := range env.bootstrap.GetStaticResources().GetListeners() {
		port := strconv.Itoa(int(l.GetAddress().GetSocketAddress().GetPortValue()))
		if !slices.ContainsFunc(envoySvc.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port+":"+port) }) {
			t.Errorf("%s: Envoy listens on %s, not published by the envoy service: %v", file, port, envoySvc.Ports)
		}
	}
	for _, cl := range env.bootstrap.GetStaticResources().GetClusters() {
		addr := cl.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		svc, ok := c.Services[addr.GetAddress()]
		if !ok {
			t.Errorf("%s: cluster %s points at %s, not a service", file, cl.GetName(), addr.GetAddress())
			continue
		}
		port := strconv.Itoa(int(addr.GetPortValue()))
		if !slices.Contains(svc.Expose, port) {
			t.Errorf("%s: cluster %s: service %s does not expose %s", file, cl.GetName(), addr.GetAddress(), port)
		}
		if !slices.Contains(servicePorts(svc), port) {
			t.Errorf("%s: cluster %s: service %s does not listen on %s", file, cl.GetName(), addr.GetAddress(), port)
		}
	}
}

// servicePorts are the ports a service listens on: those of its URAIDEN_*_LISTEN settings,
// and the numbers of its command line.
func servicePorts(s composeService) []string {
	var ports []string
	for k, v := range s.Environment {
		if _, port, err := net.SplitHostPort(v); strings.HasSuffix(k, "_LISTEN") && err == nil {
			ports = append(ports, port)
		}
	}
	for _, arg := range s.Command {
		if _, err := strconv.Atoi(arg); err == nil {
			ports = append(ports, arg)
		}
	}
	return ports
}

// uraiden's environment in the stack is a valid configuration that serves the dev chain and
// binds what Envoy reaches to every interface of the container.
func TestComposeUraidenConfig(t *testing.T) {
	for k, v := range loadCompose(t).Services["uraiden"].Environment {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(config.New(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Chain.RPCURL != "" {
		t.Errorf("chain.rpc_url %q: the stack runs the embedded dev chain", cfg.Chain.RPCURL)
	}
	for key, listen := range map[string]string{"authz.listen": cfg.Authz.Listen, "admin.listen": cfg.Admin.Listen, "devchain.listen": cfg.DevChain.Listen, "authz.http_listen": cfg.Authz.HTTPListen} {
		if host, _, _ := net.SplitHostPort(listen); host != "0.0.0.0" {
			t.Errorf("%s %q: Envoy, in another container, cannot reach it", key, listen)
		}
	}
}
