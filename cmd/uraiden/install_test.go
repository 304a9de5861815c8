package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"

	"github.com/uraiden/uraiden/internal/testkit/servertest"
	"github.com/uraiden/uraiden/rdn"
)

const modulePath = "github.com/uraiden/uraiden"

// A new user's install: `go install github.com/uraiden/uraiden/cmd/uraiden@<version>` from
// an empty folder outside any module, then `uraiden demo` and `uraiden serve` in another
// empty folder, with no config.yaml or prices.yaml in sight. The version is the commit at
// HEAD, published as a module zip of its tracked files on a file-system GOPROXY in front of
// the environment's (which serves the dependencies): a go:embed of an untracked file, a
// replace directive, a go.sum lacking an entry or a file the zip refuses breaks the install
// here as it would for a user. Uncommitted changes are not part of it.
//
// The binary must report that version, the demo tell its whole story, and serve on the dev
// chain answer the gateway's priced path with a 402 quote, take a payment from the installed
// `uraiden get`, and stop cleanly on SIGINT.
func TestGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with go install from a module zip")
	}
	git := servertest.Program(t, "apt-get install git", "git")
	rev, when := headCommit(t, git)
	version := module.PseudoVersion("", "", when, rev[:12])
	proxy := publish(t, git, rev, version, when)

	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}
	env := userEnv(t)
	bin := install(t, ctx, env, proxy, version)

	if out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "uraiden "+version+"\n") {
		t.Fatalf("uraiden version: %v\n%s", err, out)
	}

	folder := t.TempDir()
	demo := exec.CommandContext(ctx, bin, "demo")
	demo.Dir, demo.Env = folder, env
	start := time.Now()
	out, err := demo.CombinedOutput()
	if err != nil {
		t.Fatalf("uraiden demo: %v\n%s", err, out)
	}
	t.Logf("uraiden demo: %s", time.Since(start).Round(time.Millisecond))
	checkDemoStory(t, string(out))
	if left, _ := os.ReadDir(folder); len(left) != 0 {
		t.Errorf("uraiden demo left %d file(s) in the folder it ran in, %s first", len(left), left[0].Name())
	}

	serveInstalled(t, ctx, bin, env, folder)
}

// headCommit is the repository's HEAD and its commit time. Without git's history (a
// tarball of the sources, even one unpacked inside another repository) there is nothing to
// publish: CI, which has a clone, fails.
func headCommit(t *testing.T, git string) (string, time.Time) {
	top, err := exec.Command(git, "-C", repoRoot, "rev-parse", "--show-toplevel").Output()
	if err == nil && !sameDir(strings.TrimSpace(string(top)), repoRoot) {
		err = fmt.Errorf("the repository around it is %s", strings.TrimSpace(string(top)))
	}
	var fields []string
	if err == nil {
		var out []byte
		out, err = exec.Command(git, "-C", repoRoot, "log", "-1", "--format=%H %ct", "HEAD").Output()
		fields = strings.Fields(string(out))
	}
	if err != nil || len(fields) != 2 {
		msg := fmt.Sprintf("%s is not a git repository with a commit (%v): nothing to publish as a module version", repoRoot, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	secs, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return fields[0], time.Unix(secs, 0).UTC()
}

// sameDir reports whether a and b name one folder, symlinks resolved.
func sameDir(a, b string) bool {
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}

// publish lays out a file-system GOPROXY (go help goproxy) holding version: its list,
// .info, .mod and the module zip of the files git tracks at rev, and returns its file://
// URL.
//
// The zip is built as zip.CreateFromVCS builds it, from `git archive` of the revision (so
// untracked node_modules and data never enter, and export-ignore holds as for the go
// command's own zips), but by hand: CreateFromVCS refuses a linked worktree, whose .git is
// a file.
func publish(t *testing.T, git, rev, version string, when time.Time) string {
	archive := exec.Command(git, "-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=zip", rev)
	archive.Dir = repoRoot
	var stderr bytes.Buffer
	archive.Stderr = &stderr
	data, err := archive.Output()
	if err != nil {
		t.Fatalf("git archive %s: %v\n%s", rev, err, stderr.String())
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var files []modzip.File
	var goMod []byte
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		files = append(files, archived{f})
		if f.Name == "go.mod" {
			goMod = readArchived(t, f)
		}
	}
	if goMod == nil {
		t.Fatalf("no go.mod at %s", rev)
	}

	root := t.TempDir()
	escaped, err := module.EscapePath(modulePath)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var zipFile bytes.Buffer
	if err := modzip.Create(&zipFile, module.Version{Path: modulePath, Version: version}, files); err != nil {
		t.Fatalf("module zip of %s: %v", rev, err)
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, when})
	for name, content := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": info,
		version + ".mod":  goMod,
		version + ".zip":  zipFile.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("published %s@%s: %d files, zip %d bytes", modulePath, version, len(files), zipFile.Len())
	return "file://" + filepath.ToSlash(root)
}

// archived is a file of git's archive as a module zip's file.
type archived struct{ f *zip.File }

func (a archived) Path() string                 { return a.f.Name }
func (a archived) Lstat() (os.FileInfo, error)  { return a.f.FileInfo(), nil }
func (a archived) Open() (io.ReadCloser, error) { return a.f.Open() }

func readArchived(t *testing.T, f *zip.File) []byte {
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// userEnv is the environment of a user's shell: this one without URAIDEN_* settings, and a
// config directory of its own for the sender's channel store.
func userEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "URAIDEN_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	// Clipped: each command appends its own settings to a copy.
	return slices.Clip(append(env, "XDG_CONFIG_HOME="+t.TempDir()))
}

// install runs `go install <module>/cmd/uraiden@version` as a user would, in an empty
// folder outside any module and workspace, with proxy in front of the environment's
// GOPROXY, and returns the binary's path. The module is left out of the checksum database's
// lookups (GONOSUMDB), which has never seen this zip; its dependencies are checked against
// its go.sum as usual. What the install adds to the module cache is removed afterwards; the
// build cache keeps it, so that the next run builds little.
func install(t *testing.T, ctx context.Context, env []string, proxy, version string) string {
	goEnv := func(key string) string {
		out, err := exec.Command("go", "env", key).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", key, err)
		}
		return strings.TrimSpace(string(out))
	}
	upstream, noSumDB, modCache := goEnv("GOPROXY"), goEnv("GONOSUMDB"), goEnv("GOMODCACHE")
	if noSumDB != "" {
		noSumDB += ","
	}
	escaped, _ := module.EscapePath(modulePath)
	escapedVersion, _ := module.EscapeVersion(version)
	extracted := filepath.Join(modCache, filepath.FromSlash(escaped)+"@"+escapedVersion)
	downloads := filepath.Join(modCache, "cache", "download", filepath.FromSlash(escaped), "@v")
	if _, err := os.Stat(extracted); err == nil {
		t.Logf("%s is in the module cache already; it stays", extracted)
	} else {
		_, listErr := os.Stat(filepath.Join(downloads, "list"))
		t.Cleanup(func() {
			remove, _ := filepath.Glob(filepath.Join(downloads, escapedVersion+".*"))
			remove = append(remove, extracted)
			if listErr != nil {
				remove = append(remove, filepath.Join(downloads, "list"))
			}
			for _, p := range remove {
				if err := removeCached(p); err != nil {
					t.Errorf("removing %s from the module cache: %v", p, err)
				}
			}
			// The folders it made, where nothing else is left (os.Remove keeps the others).
			for _, dir := range []string{downloads, filepath.Dir(downloads), filepath.Dir(filepath.Dir(downloads)), filepath.Dir(extracted)} {
				_ = os.Remove(dir)
			}
		})
	}

	gobin := t.TempDir()
	cmd := exec.CommandContext(ctx, "go", "install", modulePath+"/cmd/uraiden@"+version)
	cmd.Dir = t.TempDir()
	cmd.Env = append(env, "GOPROXY="+proxy+","+upstream, "GONOSUMDB="+noSumDB+modulePath, "GOBIN="+gobin, "GOWORK=off")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s/cmd/uraiden@%s: %v\n%s", modulePath, version, err, out)
	}
	t.Logf("go install: %s", time.Since(start).Round(time.Millisecond))
	return filepath.Join(gobin, "uraiden")
}

// removeCached removes a path of the module cache, whose folders the go command makes
// read-only.
func removeCached(path string) error {
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(path)
}

// serveInstalled runs the installed `uraiden serve` in folder on the dev chain, on free
// loopback ports: the gateway's priced path answers the 402 quote of the built-in example
// table, the installed `uraiden get` pays it, and SIGINT stops the server cleanly.
func serveInstalled(t *testing.T, ctx context.Context, bin string, env []string, folder string) {
	gateway, admin, rpcAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	env = append(env, "URAIDEN_DEVCHAIN_LISTEN="+rpcAddr)
	var out servertest.SyncBuffer
	// The ext_authz address is never used: any free port.
	serve := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--admin-listen", admin, "--gateway", gateway)
	serve.Dir, serve.Env, serve.Stdout, serve.Stderr = folder, env, &out, &out
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	running := true
	defer func() {
		if running {
			_ = serve.Process.Kill()
			<-exited
		}
	}()

	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			running = false
			t.Fatalf("uraiden serve exited (%v) before it was ready:\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("uraiden serve not ready within 90s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Ready before its banner is printed, maybe.
	contract := waitPrinted(t, &out, contractPrinted)
	if !strings.Contains(out.String(), "using the built-in example table") {
		t.Errorf("uraiden serve in an empty folder does not say it prices with the built-in example table:\n%s", out.String())
	}

	resp, err := http.Get("http://" + gateway + "/echofix/foo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var quote struct {
		Price           string `json:"price"`
		ContractAddress string `json:"contract_address"`
	}
	h := resp.Header
	if resp.StatusCode != http.StatusPaymentRequired || h.Get(rdn.HeaderPrice) != echofixPrice || h.Get(rdn.HeaderContractAddress) != contract[1] ||
		h.Get(rdn.HeaderReceiverAddress) == "" || h.Get(rdn.HeaderTokenAddress) == "" || h.Get(rdn.HeaderGatewayPath) != "/api/1" ||
		json.Unmarshal(body, &quote) != nil || quote.Price != echofixPrice || quote.ContractAddress != contract[1] {
		t.Errorf("GET /echofix/foo unpaid: %d %v %s", resp.StatusCode, h, body)
	}

	get := exec.CommandContext(ctx, bin, "get", "--dev-account", "1", "http://"+gateway+"/echofix/foo")
	get.Dir, get.Env = folder, env
	if paid, err := get.Output(); err != nil || string(paid) != "foo" {
		t.Errorf("uraiden get: %v, printed %q", err, paid)
	}

	if err := serve.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		running = false
		if err != nil {
			t.Errorf("uraiden serve after SIGINT: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("uraiden serve still running 30s after SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "shutting down") || strings.Contains(out.String(), "level=ERROR") {
		t.Errorf("uraiden serve's log:\n%s", out.String())
	}
}

// echofixPrice is what prices.yaml asks for /echofix/: 0.005 RDNDEV in base units.
const echofixPrice = "5000000000000000"
